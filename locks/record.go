package locks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Record is a leader election record: who holds a lock, for how long, and
// how often it has changed hands. It is stored in the same format client-go
// uses (resourcelock.LeaderElectionRecord), so tenure and client-go
// candidates can share a lock.
//
// Only HolderIdentity and LeaseDuration decide anything. AcquireTime and
// RenewTime are informational: expiry must be judged on the local clock
// from when a record was last seen to change, never by comparing these
// remote timestamps with the local time.
type Record struct {
	// HolderIdentity is the identity of the candidate that holds the lock.
	// Empty means nobody holds it and any candidate may acquire it.
	HolderIdentity string
	// LeaseDuration is how long a candidate must wait after it last saw the
	// record change before it may consider the holder gone. On the wire it
	// is a whole number of seconds; a fraction is rounded up.
	LeaseDuration time.Duration
	// AcquireTime is when the current holder acquired the lock.
	AcquireTime time.Time
	// RenewTime is when the current holder last renewed the lock.
	RenewTime time.Time
	// LeaderTransitions counts how often the holder has changed. It only
	// grows, so it serves as a fencing token for a leadership term.
	LeaderTransitions int32
	// Strategy is the coordinated leader election strategy of a Lease, kept
	// so that a record survives a round trip; tenure does not interpret it.
	Strategy string
	// PreferredHolder is the coordinated leader election preferred holder of
	// a Lease, kept so that a record survives a round trip; tenure does not
	// interpret it.
	PreferredHolder string
}

// wireRecord is the JSON form of a Record, field for field the one of
// client-go's resourcelock.LeaderElectionRecord, so that Encode writes the
// bytes client-go writes.
type wireRecord struct {
	HolderIdentity       string      `json:"holderIdentity"`
	LeaseDurationSeconds int         `json:"leaseDurationSeconds"`
	AcquireTime          metav1.Time `json:"acquireTime"`
	RenewTime            metav1.Time `json:"renewTime"`
	LeaderTransitions    int         `json:"leaderTransitions"`
	Strategy             string      `json:"strategy"`
	PreferredHolder      string      `json:"preferredHolder"`
}

// durationSeconds is the lease duration as whole seconds, rounded up so
// that a candidate never announces a shorter lease than it means.
func durationSeconds(d time.Duration) int64 {
	s := int64(d / time.Second)
	if d%time.Second > 0 {
		s++
	}
	return s
}

// Encode returns the record as client-go's JSON leader election record.
// It fails only for a record that no reader could trust: a negative lease
// duration or leader transitions, or a holder without a lease duration.
func (r Record) Encode() ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(wireRecord{
		HolderIdentity:       r.HolderIdentity,
		LeaseDurationSeconds: int(durationSeconds(r.LeaseDuration)),
		AcquireTime:          metav1.NewTime(r.AcquireTime),
		RenewTime:            metav1.NewTime(r.RenewTime),
		LeaderTransitions:    int(r.LeaderTransitions),
		Strategy:             r.Strategy,
		PreferredHolder:      r.PreferredHolder,
	})
}

// MaxLeaseDuration is the longest lease duration a record may carry: the
// largest number of seconds a Lease can store.
const MaxLeaseDuration = time.Duration(math.MaxInt32) * time.Second

// Validate reports whether the record is one a candidate can act on. The
// error wraps ErrInvalidRecord and names the offending field.
func (r Record) Validate() error {
	switch {
	case r.LeaseDuration < 0:
		return invalidf("leaseDurationSeconds", "%v is negative", r.LeaseDuration)
	case r.LeaseDuration > MaxLeaseDuration:
		return invalidf("leaseDurationSeconds", "%v exceeds the maximum of %d seconds", r.LeaseDuration, math.MaxInt32)
	case r.HolderIdentity != "" && r.LeaseDuration == 0:
		return invalidf("leaseDurationSeconds", "is missing or zero while holderIdentity is %q", r.HolderIdentity)
	case r.LeaderTransitions < 0:
		return invalidf("leaderTransitions", "%d is negative", r.LeaderTransitions)
	}
	return nil
}

func invalidf(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidRecord, field, fmt.Sprintf(format, args...))
}

// DecodeRecord parses a JSON leader election record: the format client-go
// writes, the one client-go wrote into ConfigMap annotations before v0.24,
// and the one the Python Kubernetes clients write (lease duration as a
// string, times as Python datetimes). Anything it cannot read faithfully is
// an error wrapping ErrInvalidRecord that names the field; it never returns
// a zero value in place of a value it could not parse.
func DecodeRecord(data []byte) (Record, error) {
	var w struct {
		HolderIdentity       *string         `json:"holderIdentity"`
		LeaseDurationSeconds json.RawMessage `json:"leaseDurationSeconds"`
		AcquireTime          json.RawMessage `json:"acquireTime"`
		RenewTime            json.RawMessage `json:"renewTime"`
		LeaderTransitions    json.RawMessage `json:"leaderTransitions"`
		Strategy             *string         `json:"strategy"`
		PreferredHolder      *string         `json:"preferredHolder"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&w); err != nil {
		return Record{}, fmt.Errorf("%w: not a JSON object: %v", ErrInvalidRecord, err)
	}
	if dec.More() {
		return Record{}, fmt.Errorf("%w: trailing data after the JSON object", ErrInvalidRecord)
	}
	var r Record
	if w.HolderIdentity != nil {
		r.HolderIdentity = *w.HolderIdentity
	}
	if w.Strategy != nil {
		r.Strategy = *w.Strategy
	}
	if w.PreferredHolder != nil {
		r.PreferredHolder = *w.PreferredHolder
	}
	secs, err := decodeInt(w.LeaseDurationSeconds, math.MaxInt32)
	if err != nil {
		return Record{}, invalidf("leaseDurationSeconds", "%v", err)
	}
	r.LeaseDuration = time.Duration(secs) * time.Second
	transitions, err := decodeInt(w.LeaderTransitions, math.MaxInt32)
	if err != nil {
		return Record{}, invalidf("leaderTransitions", "%v", err)
	}
	r.LeaderTransitions = int32(transitions)
	if r.AcquireTime, err = decodeTime(w.AcquireTime); err != nil {
		return Record{}, invalidf("acquireTime", "%v", err)
	}
	if r.RenewTime, err = decodeTime(w.RenewTime); err != nil {
		return Record{}, invalidf("renewTime", "%v", err)
	}
	return r, r.Validate()
}

// decodeInt reads a JSON integer, or a string holding one as the Python
// clients write it. Absent or null is zero; a negative value is returned
// for Validate to name.
func decodeInt(raw json.RawMessage, limit int64) (int64, error) {
	text := strings.TrimSpace(string(raw))
	if text == "" || text == "null" {
		return 0, nil
	}
	if strings.HasPrefix(text, `"`) {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, fmt.Errorf("%s is not a valid string", text)
		}
		text = strings.TrimSpace(s)
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(text, 64)
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) > float64(limit) {
			return 0, fmt.Errorf("%s is not a whole number", string(raw))
		}
		n = int64(f)
	}
	if n > limit || n < -limit {
		return 0, fmt.Errorf("%s is out of range", string(raw))
	}
	return n, nil
}

// pythonLayouts are the forms of Python's str(datetime) and isoformat()
// for a naive datetime, which the Python clients write; they carry no zone
// and are read as UTC.
var pythonLayouts = []string{
	"2006-01-02 15:04:05.999999",
	"2006-01-02T15:04:05.999999",
}

func decodeTime(raw json.RawMessage) (time.Time, error) {
	text := strings.TrimSpace(string(raw))
	if text == "" || text == "null" {
		return time.Time{}, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return time.Time{}, fmt.Errorf("%s is not a string", text)
	}
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range pythonLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time", s)
}
