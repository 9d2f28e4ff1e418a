package placement

import (
	"fmt"
	"testing"
)

// BenchmarkPlan: a coordinator plans every RetryPeriod, and a stopping
// replica once within its RenewDeadline: go test ./placement -bench Plan.
func BenchmarkPlan(b *testing.B) {
	for _, size := range []struct{ members, components int }{{3, 12}, {20, 200}, {30, 500}} {
		var comps []string
		for i := range size.components {
			comps = append(comps, fmt.Sprintf("c%03d", i))
		}
		var ms []Member
		for i := range size.members {
			ms = append(ms, Member{Identity: fmt.Sprintf("m%02d", i), Components: comps, Started: t0})
		}
		for _, spread := range []string{"balanced", "all on one"} {
			var ls []Leadership
			for i, c := range comps {
				holder := "m00"
				if spread == "balanced" {
					holder = fmt.Sprintf("m%02d", i%size.members)
				}
				ls = append(ls, Leadership{Component: c, Holder: holder})
			}
			b.Run(fmt.Sprintf("%dx%d/%s", size.members, size.components, spread), func(b *testing.B) {
				for b.Loop() {
					Plan(ms, ls)
				}
			})
		}
	}
}
