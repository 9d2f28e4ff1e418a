package locks_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/ptr"

	"github.com/tenure/tenure/locks"
)

var at = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

func TestRecordDecodesWhatClientGoWrites(t *testing.T) {
	for _, tc := range []struct {
		name string
		cg   resourcelock.LeaderElectionRecord
	}{
		{"held", resourcelock.LeaderElectionRecord{
			HolderIdentity: "pod-a_1234", LeaseDurationSeconds: 15,
			AcquireTime: metav1.NewTime(at), RenewTime: metav1.NewTime(at.Add(10 * time.Second)),
			LeaderTransitions: 7,
		}},
		{"released", resourcelock.LeaderElectionRecord{
			LeaseDurationSeconds: 1, AcquireTime: metav1.NewTime(at), RenewTime: metav1.NewTime(at), LeaderTransitions: 7,
		}},
		{"zero times", resourcelock.LeaderElectionRecord{HolderIdentity: "a", LeaseDurationSeconds: 60}},
		{"coordinated", resourcelock.LeaderElectionRecord{
			HolderIdentity: "a", LeaseDurationSeconds: 15, RenewTime: metav1.NewTime(at),
			Strategy: coordinationv1.OldestEmulationVersion, PreferredHolder: "b",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			written, err := json.Marshal(tc.cg)
			require.NoError(t, err)

			r, err := locks.DecodeRecord(written)
			require.NoError(t, err)
			assert.Equal(t, tc.cg.HolderIdentity, r.HolderIdentity)
			assert.Equal(t, time.Duration(tc.cg.LeaseDurationSeconds)*time.Second, r.LeaseDuration)
			assert.True(t, tc.cg.AcquireTime.Time.Equal(r.AcquireTime))
			assert.True(t, tc.cg.RenewTime.Time.Equal(r.RenewTime))
			assert.Equal(t, int32(tc.cg.LeaderTransitions), r.LeaderTransitions)
			assert.Equal(t, string(tc.cg.Strategy), r.Strategy)
			assert.Equal(t, tc.cg.PreferredHolder, r.PreferredHolder)

			// Written back, it is byte for byte what client-go wrote.
			again, err := r.Encode()
			require.NoError(t, err)
			assert.Equal(t, string(written), string(again))
		})
	}
}

func TestClientGoDecodesWhatTenureWrites(t *testing.T) {
	r := locks.Record{
		HolderIdentity: "tenure-1", LeaseDuration: 15 * time.Second,
		AcquireTime: at, RenewTime: at.Add(4 * time.Second), LeaderTransitions: 2,
	}
	written, err := r.Encode()
	require.NoError(t, err)

	var cg resourcelock.LeaderElectionRecord
	require.NoError(t, json.Unmarshal(written, &cg))
	assert.Equal(t, "tenure-1", cg.HolderIdentity)
	assert.Equal(t, 15, cg.LeaseDurationSeconds)
	assert.True(t, at.Equal(cg.AcquireTime.Time))
	assert.True(t, at.Add(4*time.Second).Equal(cg.RenewTime.Time))
	assert.Equal(t, 2, cg.LeaderTransitions)

	// And the Lease spec client-go would derive from it maps back to r.
	spec := resourcelock.LeaderElectionRecordToLeaseSpec(&cg)
	back, err := locks.RecordFromLeaseSpec(&spec)
	require.NoError(t, err)
	assert.Equal(t, r.HolderIdentity, back.HolderIdentity)
	assert.Equal(t, r.LeaseDuration, back.LeaseDuration)
	assert.Equal(t, r.LeaderTransitions, back.LeaderTransitions)
	assert.True(t, r.RenewTime.Equal(back.RenewTime))
}

func TestRecordLeaseDurationRoundsUp(t *testing.T) {
	raw, err := locks.Record{HolderIdentity: "a", LeaseDuration: 1500 * time.Millisecond}.Encode()
	require.NoError(t, err)
	r, err := locks.DecodeRecord(raw)
	require.NoError(t, err)
	assert.Equal(t, 2*time.Second, r.LeaseDuration, "a fraction of a second must never shorten the announced lease")
}

func TestRecordDecodesLegacyWriters(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		want      locks.Record
	}{
		{
			"client-go v0.23 ConfigMap annotation",
			`{"holderIdentity":"old-go","leaseDurationSeconds":15,"acquireTime":"2026-03-14T15:09:26Z","renewTime":"2026-03-14T15:09:36Z","leaderTransitions":4}`,
			locks.Record{HolderIdentity: "old-go", LeaseDuration: 15 * time.Second, AcquireTime: at, RenewTime: at.Add(10 * time.Second), LeaderTransitions: 4},
		},
		{
			"Python client: duration as string, times as str(datetime)",
			`{"holderIdentity": "py-1", "leaseDurationSeconds": "17", "acquireTime": "2026-03-14 15:09:26.250000", "renewTime": "2026-03-14 15:09:36"}`,
			locks.Record{HolderIdentity: "py-1", LeaseDuration: 17 * time.Second, AcquireTime: at.Add(250 * time.Millisecond), RenewTime: at.Add(10 * time.Second)},
		},
		{
			"null holder and times",
			`{"holderIdentity":null,"leaseDurationSeconds":1,"acquireTime":null,"renewTime":null,"leaderTransitions":9}`,
			locks.Record{LeaseDuration: time.Second, LeaderTransitions: 9},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := locks.DecodeRecord([]byte(tc.raw))
			require.NoError(t, err)
			assert.Equal(t, tc.want.HolderIdentity, got.HolderIdentity)
			assert.Equal(t, tc.want.LeaseDuration, got.LeaseDuration)
			assert.True(t, tc.want.AcquireTime.Equal(got.AcquireTime), "AcquireTime %v", got.AcquireTime)
			assert.True(t, tc.want.RenewTime.Equal(got.RenewTime), "RenewTime %v", got.RenewTime)
			assert.Equal(t, tc.want.LeaderTransitions, got.LeaderTransitions)
		})
	}
}

func TestRecordRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		name, raw, field string
	}{
		{"empty", ``, "not a JSON object"},
		{"not JSON", `holder=a`, "not a JSON object"},
		{"array", `[1,2]`, "not a JSON object"},
		{"trailing data", `{"holderIdentity":"a","leaseDurationSeconds":1} {}`, "trailing data"},
		{"negative duration", `{"holderIdentity":"a","leaseDurationSeconds":-5}`, "leaseDurationSeconds: -5s is negative"},
		{"duration not a number", `{"holderIdentity":"a","leaseDurationSeconds":"soon"}`, "leaseDurationSeconds"},
		{"fractional duration", `{"holderIdentity":"a","leaseDurationSeconds":1.5}`, "leaseDurationSeconds: 1.5 is not a whole number"},
		{"huge duration", `{"holderIdentity":"a","leaseDurationSeconds":99999999999}`, "leaseDurationSeconds: 99999999999 is out of range"},
		{"holder without duration", `{"holderIdentity":"a"}`, `leaseDurationSeconds: is missing or zero while holderIdentity is "a"`},
		{"negative transitions", `{"holderIdentity":"a","leaseDurationSeconds":1,"leaderTransitions":-1}`, "leaderTransitions: -1 is negative"},
		{"bad time", `{"holderIdentity":"a","leaseDurationSeconds":1,"renewTime":"yesterday"}`, `renewTime: "yesterday" is not an RFC 3339 time`},
		{"time not a string", `{"holderIdentity":"a","leaseDurationSeconds":1,"acquireTime":12}`, "acquireTime: 12 is not a string"},
		{"holder not a string", `{"holderIdentity":7,"leaseDurationSeconds":1}`, "not a JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := locks.DecodeRecord([]byte(tc.raw))
			require.ErrorIs(t, err, locks.ErrInvalidRecord)
			assert.Contains(t, err.Error(), tc.field)
		})
	}
}

func TestRecordEncodeRejectsWhatNoReaderCouldTrust(t *testing.T) {
	for _, r := range []locks.Record{
		{HolderIdentity: "a", LeaseDuration: -time.Second},
		{HolderIdentity: "a"},
		{HolderIdentity: "a", LeaseDuration: time.Second, LeaderTransitions: -1},
		{HolderIdentity: "a", LeaseDuration: locks.MaxLeaseDuration + time.Second},
	} {
		_, err := r.Encode()
		assert.ErrorIs(t, err, locks.ErrInvalidRecord, "%+v", r)
	}
}

func TestRecordFromLeaseSpecRejectsBadSpecs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spec  coordinationv1.LeaseSpec
		field string
	}{
		{"negative duration", coordinationv1.LeaseSpec{HolderIdentity: ptr.To("a"), LeaseDurationSeconds: ptr.To[int32](-3)}, "spec.leaseDurationSeconds: -3 is negative"},
		{"holder without duration", coordinationv1.LeaseSpec{HolderIdentity: ptr.To("a")}, `spec.leaseDurationSeconds: is missing while spec.holderIdentity is "a"`},
		{"negative transitions", coordinationv1.LeaseSpec{HolderIdentity: ptr.To("a"), LeaseDurationSeconds: ptr.To[int32](1), LeaseTransitions: ptr.To[int32](-1)}, "spec.leaseTransitions: -1 is negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := locks.RecordFromLeaseSpec(&tc.spec)
			require.ErrorIs(t, err, locks.ErrInvalidRecord)
			assert.Contains(t, err.Error(), tc.field)
		})
	}
	r, err := locks.RecordFromLeaseSpec(&coordinationv1.LeaseSpec{})
	require.NoError(t, err, "an empty spec is a lease nobody holds")
	assert.Equal(t, locks.Record{}, r)
}
