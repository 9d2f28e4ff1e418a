package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/tenure/tenure/control"
	"github.com/tenure/tenure/internal/listwatch"
)

// options are the flags every command shares, and what they make.
type options struct {
	streams       genericiooptions.IOStreams
	config        *genericclioptions.ConfigFlags
	print         *genericclioptions.PrintFlags
	allNamespaces bool
	timeout       time.Duration

	now func() time.Time
}

func newOptions(streams genericiooptions.IOStreams) *options {
	return &options{
		streams: streams,
		config:  genericclioptions.NewConfigFlags(true),
		print:   genericclioptions.NewPrintFlags(""),
		now:     time.Now,
	}
}

func (o *options) addFlags(root *cobra.Command) {
	o.config.AddFlags(root.PersistentFlags())
	root.PersistentFlags().BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "read every namespace (status only)")
	// -o as kubectl's: json, yaml, jsonpath=..., go-template=...; the
	// default is tables.
	o.print.AddFlags(root)
	root.PersistentFlags().AddFlag(root.Flags().Lookup("output"))
	root.PersistentFlags().AddFlag(root.Flags().Lookup("template"))
	root.PersistentFlags().AddFlag(root.Flags().Lookup("show-managed-fields"))
	root.PersistentFlags().AddFlag(root.Flags().Lookup("allow-missing-template-keys"))
}

func (o *options) addTimeout(cmd *cobra.Command) {
	cmd.Flags().DurationVar(&o.timeout, "timeout", 2*time.Minute, "how long to wait for the move: the leader's work must wind down first")
}

// client is the control client of the cluster the flags name, and the
// namespace they name (the context's, else "default").
func (o *options) client() (*control.Client, kubernetes.Interface, string, error) {
	cfg, err := o.config.ToRESTConfig()
	if err != nil {
		return nil, nil, "", err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, "", err
	}
	ns, _, err := o.config.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, nil, "", err
	}
	c, err := control.New(cs, control.WithActor("kubectl-tenure"))
	return c, cs, ns, err
}

// actionClient is the control client and namespace of an action (move,
// drain, cordon, pause), once its flags are checked: -o must name a
// printer, before anything is done, and -A does not apply.
func (o *options) actionClient() (*control.Client, string, error) {
	if err := o.checkOutput(); err != nil {
		return nil, "", err
	}
	if o.allNamespaces {
		return nil, "", errors.New("-A/--all-namespaces applies to status only: name the namespace with -n")
	}
	c, _, ns, err := o.client()
	return c, ns, err
}

func (o *options) status(ctx context.Context, follow bool) error {
	if o.print.OutputFormat == nil || *o.print.OutputFormat != "wide" {
		if err := o.checkOutput(); err != nil {
			return err
		}
	}
	c, cs, ns, err := o.client()
	if err != nil {
		return err
	}
	if o.allNamespaces {
		ns = ""
	}
	st, err := c.Status(ctx, ns)
	if err != nil {
		return err
	}
	if err := o.showStatus(st); err != nil || !follow {
		return err
	}
	// Follow the Leases, and the ConfigMaps if they could be listed: a
	// change of either may change the status, which is printed again when
	// it does (the ages aside, which change at every renewal).
	ctx, cancel := context.WithCancel(ctx)
	var informers sync.WaitGroup
	defer informers.Wait()
	defer cancel()
	changed := make(chan struct{}, 1)
	kick := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { notify(changed) },
		UpdateFunc: func(any, any) { notify(changed) },
		DeleteFunc: func(any) { notify(changed) },
	}
	followed := []cache.SharedInformer{cache.NewSharedInformer(listwatch.Of(cs.CoordinationV1().Leases(ns), "", ""), &coordinationv1.Lease{}, 0)}
	if !slices.ContainsFunc(st.Warnings, func(w string) bool { return strings.Contains(w, "configmaps") }) {
		followed = append(followed, cache.NewSharedInformer(listwatch.Of(cs.CoreV1().ConfigMaps(ns), "", ""), &corev1.ConfigMap{}, 0))
	}
	for _, inf := range followed {
		if _, err := inf.AddEventHandler(kick); err != nil {
			return err
		}
		informers.Go(func() { inf.RunWithContext(ctx) })
	}
	last := fingerprint(st)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
		// Renewals come in bursts: one status per burst.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
		st, err := c.Status(ctx, ns)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			fmt.Fprintln(o.streams.ErrOut, "error:", err)
		case fingerprint(st) != last:
			last = fingerprint(st)
			fmt.Fprintln(o.streams.Out)
			if err := o.showStatus(st); err != nil {
				return err
			}
		}
	}
}

// showStatus prints st's warnings and st.
func (o *options) showStatus(st *control.Status) error {
	for _, w := range st.Warnings {
		fmt.Fprintln(o.streams.ErrOut, "warning:", w)
	}
	return o.printStatus(st)
}

// fingerprint is what st says but for its times.
func fingerprint(st *control.Status) string {
	var b strings.Builder
	for _, e := range st.Elections {
		e.Acquired, e.Renewed = time.Time{}, time.Time{}
		fmt.Fprintf(&b, "%+v\n", e)
	}
	for _, m := range st.Members {
		m.Started, m.Renewed = time.Time{}, time.Time{}
		fmt.Fprintf(&b, "%+v\n", m)
	}
	return b.String()
}

func notify(c chan<- struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (o *options) move(ctx context.Context, component, to string) error {
	c, ns, err := o.actionClient()
	if err != nil {
		return err
	}
	if to == "any" {
		to = control.AnyMember
	} else if to == "" {
		return errors.New("--to: name the replica, or any")
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	mv, err := c.Move(ctx, ns, component, to)
	o.warn(mv.Warnings)
	if err != nil {
		return err
	}
	return o.printResult(&moveObject{objectMeta("Move"), mv}, func() {
		o.printMove(mv)
	})
}

func (o *options) drain(ctx context.Context, identity string) error {
	c, ns, err := o.actionClient()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	d, derr := c.Drain(ctx, ns, identity)
	o.warn(d.Cordoned.Warnings)
	for _, mv := range d.Moves {
		o.warn(mv.Warnings)
	}
	if err := o.printResult(&drainObject{objectMeta("Drain"), d}, func() {
		o.printCordon(d.Cordoned, true)
		for _, mv := range d.Moves {
			if mv.Term != 0 || mv.Took != 0 {
				o.printMove(mv)
			}
		}
		if derr == nil && len(d.Coordinates) == 0 {
			fmt.Fprintf(o.streams.Out, "%s leads nothing now\n", identity)
		} else if derr == nil {
			fmt.Fprintf(o.streams.Out, "%s leads no component now (it still coordinates placement group %s)\n", identity, strings.Join(d.Coordinates, ", "))
		}
	}); err != nil {
		return err
	}
	return derr
}

func (o *options) cordon(ctx context.Context, identity string, on bool) error {
	c, ns, err := o.actionClient()
	if err != nil {
		return err
	}
	res, err := c.Cordon(ctx, ns, identity, on)
	o.warn(res.Warnings)
	if err != nil {
		return err
	}
	return o.printResult(&cordonObject{objectMeta("Cordon"), res}, func() { o.printCordon(res, on) })
}

func (o *options) pause(ctx context.Context, component string, on bool) error {
	c, ns, err := o.actionClient()
	if err != nil {
		return err
	}
	res, err := c.Pause(ctx, ns, component, on)
	o.warn(res.Warnings)
	if err != nil {
		return err
	}
	return o.printResult(&pauseObject{objectMeta("Pause"), res}, func() {
		what := "placement of " + res.Component
		if res.Component == "" {
			what = "placement of group " + strings.Join(res.Groups, ", ")
		}
		state := map[bool]string{true: "paused", false: "resumed"}[on]
		if !res.Changed {
			state = "already " + state
		}
		fmt.Fprintf(o.streams.Out, "%s %s\n", what, state)
	})
}

func (o *options) warn(warnings []string) {
	for _, w := range warnings {
		fmt.Fprintln(o.streams.ErrOut, "warning:", w)
	}
}

func (o *options) printMove(mv control.Moved) {
	if mv.Already {
		fmt.Fprintf(o.streams.Out, "%s: %s leads it already (term %d)\n", mv.Component, mv.To, mv.Term)
		return
	}
	gap := "the hand-over itself was not seen"
	if mv.Gap > 0 {
		gap = "without a working leader for " + mv.Gap.Round(time.Millisecond).String() + " at most"
	}
	fmt.Fprintf(o.streams.Out, "%s: %s → %s, term %d, in %v (%s)\n", mv.Component, mv.From, mv.To, mv.Term, mv.Took.Round(time.Millisecond), gap)
}

func (o *options) printCordon(res control.Cordoned, on bool) {
	what := map[bool]string{true: "cordoned", false: "uncordoned"}[on]
	if !res.Changed {
		what = "already " + what
	}
	fmt.Fprintf(o.streams.Out, "%s %s\n", res.Identity, what)
}

// checkOutput refuses a -o that no printer takes, before any action.
func (o *options) checkOutput() error {
	if o.print.OutputFormat == nil || *o.print.OutputFormat == "" {
		return nil
	}
	if *o.print.OutputFormat == "name" {
		return errors.New("-o name: what kubectl tenure prints has no object name; use json, yaml, jsonpath=... or go-template=...")
	}
	_, err := o.print.ToPrinter()
	return err
}

// printResult prints obj as -o says, or, with no -o, as text does.
func (o *options) printResult(obj runtime.Object, text func()) error {
	if o.print.OutputFormat == nil || *o.print.OutputFormat == "" {
		text()
		return nil
	}
	p, err := o.print.ToPrinter()
	if err != nil {
		return err
	}
	return p.PrintObj(obj, o.streams.Out)
}

// printStatus prints st as -o says: with none, as two tables.
func (o *options) printStatus(st *control.Status) error {
	if o.print.OutputFormat != nil && *o.print.OutputFormat != "" && *o.print.OutputFormat != "wide" {
		return o.printResult(&statusObject{objectMeta("Status"), st}, nil)
	}
	w := printers.GetNewTabWriter(o.streams.Out)
	tp := printers.NewTablePrinter(printers.PrintOptions{})
	if err := tp.PrintObj(o.electionTable(st), w); err != nil {
		return err
	}
	if len(st.Members) > 0 {
		fmt.Fprintln(w)
		if err := tp.PrintObj(o.memberTable(st), w); err != nil {
			return err
		}
	}
	return w.Flush()
}

// table is a table of columns cols, with a NAMESPACE column first when
// st is of every namespace (see row).
func table(st *control.Status, cols ...string) *metav1.Table {
	t := &metav1.Table{}
	if st.Namespace == "" {
		cols = append([]string{"NAMESPACE"}, cols...)
	}
	for _, c := range cols {
		t.ColumnDefinitions = append(t.ColumnDefinitions, metav1.TableColumnDefinition{Name: c, Type: "string"})
	}
	return t
}

// row adds the cells of an object of namespace ns to t, a table of st.
func row(t *metav1.Table, st *control.Status, ns string, cells ...any) {
	if st.Namespace == "" {
		cells = append([]any{ns}, cells...)
	}
	t.Rows = append(t.Rows, metav1.TableRow{Cells: cells})
}

func (o *options) electionTable(st *control.Status) *metav1.Table {
	t := table(st, "COMPONENT", "KIND", "HOLDER", "TERM", "HELD", "RENEWED", "MOVING TO", "PAUSED", "CANDIDATES")
	for _, e := range st.Elections {
		holder, held, renewed, moving := "<none>", "-", "-", "-"
		switch {
		case e.Error != "":
			holder = "<unreadable: " + e.Error + ">"
		case e.Holder != "":
			holder = e.Holder
			held, renewed = o.age(e.Acquired), o.age(e.Renewed)
			if !e.Renewed.IsZero() {
				renewed += " ago"
			}
		}
		if e.PlacementGroup != "" {
			holder += " (placement coordinator)"
		}
		switch {
		case e.HandedOver:
			moving = "handed over"
		case e.MovingTo != "":
			moving = e.MovingTo
		}
		paused := "-"
		switch {
		case e.Paused && e.PlacementGroup != "":
			paused = "group"
		case e.Paused:
			paused = "yes"
		case e.GroupPaused:
			paused = "group"
		}
		row(t, st, e.Namespace, e.Component, strings.ToLower(string(e.Kind)), holder, e.Term, held, renewed, moving, paused,
			orDash(strings.Join(e.Candidates, ",")))
	}
	return t
}

func (o *options) memberTable(st *control.Status) *metav1.Table {
	t := table(st, "REPLICA", "GROUP", "LEADS", "SHARE", "AGE", "REVISION", "ZONE", "STATE")
	for _, m := range st.Members {
		campaigns := 0
		for _, e := range st.Elections {
			if e.Namespace == m.Namespace && slices.Contains(e.Candidates, m.Identity) {
				campaigns++
			}
		}
		var state []string
		for _, s := range []struct {
			on   bool
			name string
		}{{m.Expired, "expired"}, {m.Cordoned, "cordoned"}, {m.NeverLead, "never-lead"}, {m.ShuttingDown, "shutting-down"}} {
			if s.on {
				state = append(state, s.name)
			}
		}
		if len(state) == 0 {
			state = []string{"ready"}
		}
		row(t, st, m.Namespace, m.Identity, orDash(m.Group), orDash(strings.Join(m.Leads, ",")), fmt.Sprintf("%d/%d", len(m.Leads), campaigns),
			o.age(m.Started), orDash(m.Revision), orDash(m.Zone), strings.Join(state, ","))
	}
	return t
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// age is how long ago t was, as kubectl writes ages; a time ahead of this
// clock (the holder's runs ahead) is "0s".
func (o *options) age(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return duration.HumanDuration(max(o.now().Sub(t), 0))
}

// The objects -o prints: each a Kind of tenure.dev/v1alpha1, so that
// kubectl's printers (json, yaml, jsonpath, go-template) take them.
type (
	statusObject struct {
		metav1.TypeMeta `json:",inline"`
		*control.Status `json:",inline"`
	}
	moveObject struct {
		metav1.TypeMeta `json:",inline"`
		control.Moved   `json:",inline"`
	}
	drainObject struct {
		metav1.TypeMeta `json:",inline"`
		control.Drained `json:",inline"`
	}
	cordonObject struct {
		metav1.TypeMeta  `json:",inline"`
		control.Cordoned `json:",inline"`
	}
	pauseObject struct {
		metav1.TypeMeta `json:",inline"`
		control.Paused  `json:",inline"`
	}
)

func objectMeta(kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: "tenure.dev/v1alpha1", Kind: kind}
}

// The printers only read them: a shallow copy is a copy.
func (s *statusObject) DeepCopyObject() runtime.Object { c := *s; return &c }
func (m *moveObject) DeepCopyObject() runtime.Object   { c := *m; return &c }
func (d *drainObject) DeepCopyObject() runtime.Object  { c := *d; return &c }
func (c *cordonObject) DeepCopyObject() runtime.Object { x := *c; return &x }
func (p *pauseObject) DeepCopyObject() runtime.Object  { c := *p; return &c }
