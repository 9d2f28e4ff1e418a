package placement

// From the second placement review: MemberLeaseName for odd identities.

import (
	"fmt"
	"hash/fnv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"k8s.io/apimachinery/pkg/util/validation"
)

// TestMemberLeaseNameIsAlwaysAValidName: the name keeps '.' and '-' as
// they are and only trims them at the ends, so an identity with '.' next to
// a character mapped to '-' (or to another '.'), or one cut at 200
// characters just after a '.', gives a Lease name the API server refuses
// (a DNS subdomain's labels start and end with a letter or digit). That
// replica's Announce fails every interval: it is never a member, never
// given leaderships, and what it leads is never balanced.
func TestMemberLeaseNameIsAlwaysAValidName(t *testing.T) {
	for _, id := range []string{
		"a._b",                            // "a.-b"
		"host_.example",                   // "host-.example"
		"a..b",                            // kept as it is: an empty label
		strings.Repeat("a", 199) + ".b_c", // cut after the '.': "aaa.-<hash>"
		"node/.hidden",                    // "node-.hidden"
	} {
		name := MemberLeaseName(id)
		assert.Empty(t, validation.IsDNS1123Subdomain(name), "identity %q: Lease name %q", id, name)
	}
}

// TestTwoIdentitiesNeverShareAMemberLease: an identity that had to change is
// named after its mapped form and a 32-bit hash; an identity that is
// already that name is kept as it is. So "a_" and "a-<fnv32a("a_")>" share
// one Lease: each Announce overwrites the other's record (holder,
// components, shutting-down), Members shows one or the other, and one's
// Leave deletes the other's record.
func TestTwoIdentitiesNeverShareAMemberLease(t *testing.T) {
	h := fnv.New32a()
	h.Write([]byte("a_"))
	other := fmt.Sprintf("a-%08x", h.Sum32())
	assert.NotEqual(t, MemberLeaseName("a_"), MemberLeaseName(other), "%q and %q", "a_", other)
}
