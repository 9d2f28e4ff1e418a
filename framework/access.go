package framework

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tenure/tenure/locks"
)

// accessCheckTimeout bounds the access check at start-up, so that an
// unreachable API server delays the start by this much at most.
const accessCheckTimeout = 5 * time.Second

// permissioned is a lock that says which API requests it makes.
type permissioned interface {
	Permissions() []locks.Permission
}

// checkAccess asks the API server, with a SelfSubjectAccessReview per
// request, whether this program may make every request its locks make,
// and fails naming each component, verb and resource it may not: a
// missing RBAC rule is clearer at start-up than as a stream of failed
// renewals. Reviews that cannot be made (the API server down or slow at
// start-up) are logged once and do not block: the elections retry until
// it answers. The check takes at most accessCheckTimeout.
func (r *Runner) checkAccess(ctx context.Context, cs kubernetes.Interface) error {
	if cs == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, accessCheckTimeout)
	defer cancel()
	type denial struct {
		component string
		perm      locks.Permission
		reason    string
	}
	var (
		mu        sync.Mutex
		denials   []denial
		unchecked int
		why       error
		wg        sync.WaitGroup
	)
	type checked struct {
		what  string // "components.<name>", or "placement"
		perms []locks.Permission
	}
	var users []checked
	for _, u := range r.units {
		users = append(users, checked{"components." + u.comp.Name(), u.perms})
	}
	if r.placer != nil {
		users = append(users, checked{"placement", r.placer.permissions()})
	}
	for _, u := range users {
		for _, p := range u.perms {
			wg.Go(func() {
				review, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
					Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
						Namespace: p.Namespace, Verb: p.Verb, Group: p.Group, Resource: p.Resource, Name: p.Name,
					}},
				}, metav1.CreateOptions{})
				if err != nil {
					mu.Lock()
					unchecked++
					why = err
					mu.Unlock()
					return
				}
				if !review.Status.Allowed {
					mu.Lock()
					denials = append(denials, denial{u.what, p, review.Status.Reason})
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if unchecked > 0 {
		r.log.Warn("cannot check access at start-up; starting anyway, the elections retry until the API server answers",
			"unchecked", unchecked, "err", why)
	}
	if len(denials) == 0 {
		return nil
	}
	slices.SortFunc(denials, func(a, b denial) int {
		return cmp.Or(cmp.Compare(a.component, b.component), cmp.Compare(a.perm.String(), b.perm.String()))
	})
	user := "this program's user"
	if review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{}); err == nil {
		user = strconv.Quote(review.Status.UserInfo.Username)
	}
	var errs []error
	for _, d := range denials {
		msg := fmt.Sprintf("%s: forbidden: %s may not %s", d.component, user, d.perm)
		if d.reason != "" {
			msg += " (" + d.reason + ")"
		}
		errs = append(errs, errors.New(msg))
	}
	if err := errors.Join(errs...); err != nil {
		hint := ""
		if slices.ContainsFunc(denials, func(d denial) bool { return d.component == "placement" }) {
			hint = " (placement: none keeps every leadership with whoever wins it and needs none of placement's)"
		}
		return fmt.Errorf("tenure: missing RBAC permissions; grant them with a Role (see deploy/)%s:\n%w", hint, err)
	}
	return nil
}
