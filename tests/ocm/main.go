// Command meshplane-test-ocm is one binary holding the Open Cluster Management pieces
// the end-to-end tests start as processes: the hub's registration controller and work
// manager, and the klusterlet agent (registration and work agent in one process) that
// runs beside each member cluster. They are OCM's own cobra commands, built from OCM's
// Go module at the version pinned in go.mod; nothing here re-implements OCM.
//
// Usage:
//
//	meshplane-test-ocm hub-registration --kubeconfig HUB ...   # registration controller
//	meshplane-test-ocm hub-work --kubeconfig HUB ...           # work hub manager
//	meshplane-test-ocm agent --kubeconfig MEMBER --bootstrap-kubeconfig HUB --cluster-name X ...
//
// With --exit-on-stdin-eof (before or after the subcommand) the process shuts down as on
// SIGTERM once its standard input is closed: when the test process that started it with
// a pipe dies, the OCM processes do not outlive it.
//
// tests/e2e/ocm_support.py starts it; tests/ocm/build.sh builds it (cached).
package main

import (
	goflag "flag"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	utilflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/logs"

	ocmfeature "open-cluster-management.io/api/feature"
	"open-cluster-management.io/ocm/pkg/cmd/hub"
	"open-cluster-management.io/ocm/pkg/cmd/spoke"
	"open-cluster-management.io/ocm/pkg/features"
)

func main() {
	pflag.CommandLine.SetNormalizeFunc(utilflag.WordSepNormalizeFunc)
	pflag.CommandLine.AddGoFlagSet(goflag.CommandLine)
	logs.AddFlags(pflag.CommandLine)
	logs.InitLogs()
	defer logs.FlushLogs()

	exitOnStdinEOF := false
	root := &cobra.Command{
		Use:   "meshplane-test-ocm",
		Short: "Open Cluster Management hub controllers and klusterlet agent for meshplane's tests",
		Run: func(cmd *cobra.Command, _ []string) {
			_ = cmd.Help()
			os.Exit(1)
		},
		PersistentPreRun: func(*cobra.Command, []string) {
			if exitOnStdinEOF {
				go func() {
					_, _ = io.Copy(io.Discard, os.Stdin)
					_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
				}()
			}
		},
	}
	root.PersistentFlags().BoolVar(&exitOnStdinEOF, "exit-on-stdin-eof", false,
		"shut down (as on SIGTERM) when standard input is closed (the parent died)")
	// The hub commands read OCM's hub feature gates, which OCM's own registration and
	// work binaries register in their main(): without this, the first gate a controller
	// checks panics ("feature ... is not registered in FeatureGate"). The agent
	// registers its spoke gates itself.
	utilruntime.Must(features.HubMutableFeatureGate.Add(ocmfeature.DefaultHubRegistrationFeatureGates))
	utilruntime.Must(features.HubMutableFeatureGate.Add(ocmfeature.DefaultHubWorkFeatureGates))
	registration := hub.NewRegistrationController()
	registration.Use = "hub-registration"
	features.HubMutableFeatureGate.AddFlag(registration.Flags())
	work := hub.NewWorkController()
	work.Use = "hub-work"
	features.HubMutableFeatureGate.AddFlag(work.Flags())
	agent := spoke.NewKlusterletAgentCmd()
	agent.Use = "agent"
	root.AddCommand(registration, work, agent)
	if err := root.Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "%v\n", err)
		os.Exit(1)
	}
}
