package main

import (
	"context"
	"fmt"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/election"
)

var componentNames = []string{"billing", "reports", "mailer", "indexer", "janitor", "search", "payments", "audit"}

// names returns n component names.
func names(n int) []string {
	var out []string
	for i := range n {
		if i < len(componentNames) {
			out = append(out, componentNames[i])
		} else {
			out = append(out, fmt.Sprintf("component-%d", i+1))
		}
	}
	return out
}

// demoComponent leads until its term ends and logs both ends of the term.
func demoComponent(name string, ev *events) components.Component {
	return components.New(name, func(ctx context.Context) error {
		term, _ := election.TermFromContext(ctx)
		ev.add("%s leads %s, term %d", term.Identity, name, term.FencingToken)
		<-ctx.Done()
		ev.add("%s stopped leading %s, term %d", term.Identity, name, term.FencingToken)
		return nil
	})
}
