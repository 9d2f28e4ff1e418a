package election

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDocumentationListsTheTelemetryNames: the metric, span and attribute
// names are unexported, and dashboards find them in the package
// documentation; it must name every one the code emits.
func TestDocumentationListsTheTelemetryNames(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	require.NoError(t, err)
	doc := strings.Join(strings.Fields(strings.ReplaceAll(string(src), "//", "")), " ")
	names := []string{
		metricLeader, metricTransitions, metricAttempts, metricRenewDuration, metricTimeToLeadership, metricSinceLastRenewal,
		"tenure_election_leader", "tenure_election_leader_transitions", "tenure_election_attempts_total",
		"tenure_election_renew_duration_seconds", "tenure_election_time_to_first_leadership_seconds",
		"tenure_election_since_last_renewal_seconds",
		spanAcquire, spanRenew, spanRelease, spanLeadPrefix + "<election>",
		string(attrElection), string(attrIdentity), string(attrLock), string(attrLockKind), string(attrNamespace),
		string(attrHolder), string(attrOutcome), string(attrTransitions), string(attrErrorType), string(attrEndReason),
		string(attrOperation), operationAcquire, operationRenew, operationRelease,
		outcomeAcquired, outcomeRenewed, outcomeUnchanged, outcomeReleased, outcomeHeld, outcomeMissing,
		outcomeConflict, outcomeLost, outcomeError,
	}
	for _, name := range names {
		assert.Contains(t, doc, name)
	}
}
