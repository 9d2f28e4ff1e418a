// Command kubebins prints the paths of the kube-apiserver and etcd that
// tenure's tests run: those $KUBEBUILDER_ASSETS names, once checked, or
// else the cached ones, built first if missing. The test command runs it
// first so that a cold build is not charged to a test's timeout, and a
// bad $KUBEBUILDER_ASSETS stops it before any test runs.
package main

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/tenure/tenure/internal/kubetest"
)

func main() {
	bins, err := kubetest.EnsureBinaries(context.Background(), func(msg string) {
		fmt.Fprintln(os.Stderr, "kubebins:", msg)
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(bins.APIServer)
	fmt.Println(bins.Etcd)
}
