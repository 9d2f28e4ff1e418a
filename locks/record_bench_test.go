package locks_test

import (
	"encoding/json"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/tenure/tenure/locks"
)

var benchRecord = locks.Record{
	HolderIdentity: "multicomponent-7d9f8c6b5-x2k4q-1a2b3c", LeaseDuration: 15 * time.Second,
	AcquireTime: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC), RenewTime: time.Date(2026, 11, 24, 12, 5, 0, 0, time.UTC),
	LeaderTransitions: 42,
}

func BenchmarkRecordEncode(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := benchRecord.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRecordDecode(b *testing.B) {
	raw, err := benchRecord.Encode()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := locks.DecodeRecord(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// The same record in client-go's type, encoded and decoded as client-go's
// ConfigMap/Endpoints locks did: the baseline.
func clientGoRecord() resourcelock.LeaderElectionRecord {
	return resourcelock.LeaderElectionRecord{
		HolderIdentity: benchRecord.HolderIdentity, LeaseDurationSeconds: 15,
		AcquireTime: metav1.NewTime(benchRecord.AcquireTime), RenewTime: metav1.NewTime(benchRecord.RenewTime),
		LeaderTransitions: 42,
	}
}

func BenchmarkClientGoRecordEncode(b *testing.B) {
	r := clientGoRecord()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClientGoRecordDecode(b *testing.B) {
	raw, err := json.Marshal(clientGoRecord())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		var r resourcelock.LeaderElectionRecord
		if err := json.Unmarshal(raw, &r); err != nil {
			b.Fatal(err)
		}
	}
}
