// Command kubebins builds the kube-apiserver and etcd that tenure's tests
// run, if they are not cached yet, and prints their paths. The test
// command runs it first so that a cold build is not charged to a test's
// timeout.
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
