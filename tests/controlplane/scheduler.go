package main

// The real kube-scheduler (k8s.io/kubernetes/cmd/kube-scheduler/app) in-process.
//
// It is configured through its own command-line flags, parsed into its own Options,
// then built and run by app.Setup and app.Run, the two halves of what the
// kube-scheduler command does. The command itself (app.NewSchedulerCommand) cannot be
// used here: it installs a process-wide SIGTERM handler, which kube-apiserver already
// installed (a second one panics), and it re-applies the logging configuration.
//
// It authenticates with its own client certificate (CN=system:kube-scheduler), so the
// built-in RBAC role system:kube-scheduler applies, as in a kubeadm cluster. Leader
// election is off (one scheduler) and it serves no HTTPS endpoint (--secure-port=0):
// the tests watch its decisions in the API (spec.nodeName, the PodScheduled condition,
// FailedScheduling events), not its /metrics.

import (
	"context"
	"fmt"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"
	schedulerapp "k8s.io/kubernetes/cmd/kube-scheduler/app"
	scheduleroptions "k8s.io/kubernetes/cmd/kube-scheduler/app/options"
)

// startScheduler builds the scheduler against the kubeconfig at kubeconfigPath and
// runs it in the background until ctx is done. It returns once the scheduler is built
// (its informers start syncing right after).
func startScheduler(ctx context.Context, kubeconfigPath string) error {
	opts := scheduleroptions.NewOptions()
	fs := pflag.NewFlagSet("kube-scheduler", pflag.ContinueOnError)
	for _, set := range opts.Flags.FlagSets {
		fs.AddFlagSet(set)
	}
	args := []string{
		"--kubeconfig=" + kubeconfigPath,
		"--leader-elect=false",
		"--secure-port=0",
	}
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("kube-scheduler flags: %w", err)
	}
	ctx = klog.NewContext(ctx, klog.LoggerWithName(klog.FromContext(ctx), "kube-scheduler"))
	cc, sched, err := schedulerapp.Setup(ctx, opts)
	if err != nil {
		return fmt.Errorf("kube-scheduler setup: %w", err)
	}
	go func() {
		// Run returns only when ctx is done (with leader election off it always returns
		// an error then, "finished without leader elect").
		err := schedulerapp.Run(ctx, cc, sched)
		if ctx.Err() == nil {
			klog.ErrorS(err, "meshplane-test-controlplane: kube-scheduler stopped")
		}
	}()
	return nil
}
