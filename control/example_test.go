package control_test

import (
	"context"
	"fmt"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tenure/tenure/control"
)

// A program moves the leadership of billing to whichever replica can take
// it, as kubectl tenure move billing --to any does, and reports how long
// the hand-over took.
func ExampleClient_Move() {
	cfg, err := clientcmd.BuildConfigFromFlags("", clientcmd.RecommendedHomeFile)
	if err != nil {
		fmt.Println(err)
		return
	}
	c, err := control.New(kubernetes.NewForConfigOrDie(cfg))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mv, err := c.Move(ctx, "apps", "billing", control.AnyMember)
	if err != nil {
		fmt.Println(err) // e.g. unknown component "billing" in namespace apps (...)
		return
	}
	fmt.Printf("%s: %s → %s in %v\n", mv.Component, mv.From, mv.To, mv.Took)
}

// Status says who leads what, and which replicas are there.
func ExampleClient_Status() {
	cfg, err := clientcmd.BuildConfigFromFlags("", clientcmd.RecommendedHomeFile)
	if err != nil {
		fmt.Println(err)
		return
	}
	c, err := control.New(kubernetes.NewForConfigOrDie(cfg))
	if err != nil {
		fmt.Println(err)
		return
	}
	st, err := c.Status(context.Background(), "apps")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range st.Elections {
		fmt.Printf("%s led by %q in term %d\n", e.Component, e.Holder, e.Term)
	}
	for _, m := range st.Members {
		fmt.Printf("%s leads %v (eligible: %v)\n", m.Identity, m.Leads, m.Eligible())
	}
}
