package locks_test

import (
	"testing"
	"time"

	"github.com/tenure/tenure/locks"
)

// FuzzDecodeRecord: any bytes decode to a valid record or an error, never
// a panic, and a decoded record survives a round trip unchanged.
func FuzzDecodeRecord(f *testing.F) {
	for _, seed := range []string{
		`{"holderIdentity":"a","leaseDurationSeconds":15,"acquireTime":"2026-11-24T12:00:00Z","renewTime":"2026-11-24T12:00:05Z","leaderTransitions":3}`,
		`{"holderIdentity":"","leaseDurationSeconds":1,"acquireTime":null,"renewTime":null,"leaderTransitions":0}`,
		`{"holderIdentity": "py", "leaseDurationSeconds": "15", "acquireTime": "2026-11-24 12:00:00.123456", "renewTime": "2026-11-24 12:00:05", "leaderTransitions": 1}`,
		`{"holderIdentity":"a","leaseDurationSeconds":-5}`,
		`{"holderIdentity":"a"}`,
		`{"leaseDurationSeconds":1e400}`,
		`{`, ``, `null`, `[]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := locks.DecodeRecord(data)
		if err != nil {
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("decoded an invalid record %+v: %v", r, err)
		}
		raw, err := r.Encode()
		if err != nil {
			t.Fatalf("cannot encode a decoded record %+v: %v", r, err)
		}
		again, err := locks.DecodeRecord(raw)
		if err != nil {
			t.Fatalf("cannot decode %s: %v", raw, err)
		}
		// client-go's format keeps whole seconds.
		if !again.AcquireTime.Equal(r.AcquireTime.Truncate(time.Second)) || !again.RenewTime.Equal(r.RenewTime.Truncate(time.Second)) ||
			again.HolderIdentity != r.HolderIdentity || again.LeaderTransitions != r.LeaderTransitions ||
			again.LeaseDuration < r.LeaseDuration {
			t.Fatalf("round trip changed %+v into %+v", r, again)
		}
	})
}
