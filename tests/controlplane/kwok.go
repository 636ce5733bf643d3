package main

// KWOK (sigs.k8s.io/kwok) in-process: the simulated kubelet of the "cluster in a box".
//
// It manages the Nodes whose annotations match --kwok-manage-nodes (by default
// kwok.x-k8s.io/node=fake, KWOK's own convention) and the Pods bound to them, and plays
// KWOK's default "fast" stages, the same ones kwokctl installs:
//
//   - node-initialize + node-heartbeat: a managed Node becomes Ready (conditions,
//     addresses, daemon endpoints) and its conditions are refreshed every 20-45 s;
//   - pod-ready: a Pod the scheduler bound to a managed Node becomes Running and Ready,
//     with a pod IP from --kwok-pod-cidr and the Node's IP as host IP;
//   - pod-complete: a Running Pod owned by a Job completes (Succeeded);
//   - pod-delete: a Pod being deleted (deletionTimestamp set) is removed, as a kubelet
//     does once its containers stopped.
//
// Nothing is scheduled here: KWOK only acts on Pods that already have spec.nodeName,
// which the real kube-scheduler sets (scheduler.go). A Pod that fits no Node stays
// Pending with PodScheduled=False/Unschedulable, as in a real cluster.
//
// This mirrors what the `kwok` command builds (sigs.k8s.io/kwok/pkg/kwok/cmd/root.go)
// minus its HTTP server (logs/exec/port-forward/metrics endpoints), which the tests do
// not need and which would need one more port.

import (
	"context"
	"fmt"
	"os"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	nodefast "sigs.k8s.io/kwok/kustomize/stage/node/fast"
	nodeheartbeat "sigs.k8s.io/kwok/kustomize/stage/node/heartbeat"
	podfast "sigs.k8s.io/kwok/kustomize/stage/pod/fast"
	"sigs.k8s.io/kwok/pkg/apis/internalversion"
	"sigs.k8s.io/kwok/pkg/client/clientset/versioned"
	"sigs.k8s.io/kwok/pkg/config"
	"sigs.k8s.io/kwok/pkg/kwok/controllers"
	kwoklog "sigs.k8s.io/kwok/pkg/log"
	kwokclient "sigs.k8s.io/kwok/pkg/utils/client"
)

// defaultKwokStages are the stages kwokctl configures by default for a cluster whose
// nodes have no lease (pkg/kwokctl/runtime/cluster.go: getDefaultNodeStages,
// getDefaultPodStages).
var defaultKwokStages = []string{
	nodefast.DefaultNodeInit,
	nodeheartbeat.DefaultNodeHeartbeat,
	podfast.DefaultPodReady,
	podfast.DefaultPodComplete,
	podfast.DefaultPodDelete,
}

// startKwok starts KWOK's controller against the API server described by the
// kubeconfig file at kubeconfigPath and returns once it watches Nodes and Pods. It
// runs until ctx is done.
func startKwok(ctx context.Context, kubeconfigPath, manageNodesAnnotation, podCIDR, nodeIP string) error {
	// KWOK logs through its own slog-based logger; at Info it logs every stage played on
	// every pod. Warnings and errors are enough in the control plane's log.
	ctx = kwoklog.NewContext(ctx, kwoklog.NewLogger(os.Stderr, kwoklog.LevelWarn))

	stages := map[internalversion.StageResourceRef][]*internalversion.Stage{}
	for _, raw := range defaultKwokStages {
		stage, err := config.UnmarshalWithType[*internalversion.Stage](raw)
		if err != nil {
			return fmt.Errorf("parse default stage: %w", err)
		}
		stages[stage.Spec.ResourceRef] = append(stages[stage.Spec.ResourceRef], stage)
	}

	// The same clients, built the same way, as the kwok command (root.go runE).
	clientset, err := kwokclient.NewClientset("", kubeconfigPath)
	if err != nil {
		return err
	}
	restConfig, err := clientset.ToRESTConfig()
	if err != nil {
		return err
	}
	restConfig = rest.AddUserAgent(restConfig, "meshplane-test-controlplane/kwok")
	dynamicClient, err := clientset.ToDynamicClient()
	if err != nil {
		return err
	}
	restMapper, err := clientset.ToRESTMapper()
	if err != nil {
		return err
	}
	restClient, err := rest.RESTClientFor(restConfig)
	if err != nil {
		return err
	}
	typedClient, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	typedKwokClient, err := versioned.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	id, err := controllers.Identity()
	if err != nil {
		return err
	}

	// Parallelism figures are KWOK's defaults (pkg/apis/config/v1alpha1 defaults).
	ctr, err := controllers.NewController(controllers.Config{
		Clock:                             clock.RealClock{},
		DynamicClient:                     dynamicClient,
		RESTClient:                        restClient,
		RESTMapper:                        restMapper,
		ImpersonatingDynamicClient:        clientset.ToImpersonatingDynamicClient(),
		ImpersonatingTypedClient:          clientset.ToImpersonatingTypedClient(),
		TypedClient:                       typedClient,
		TypedKwokClient:                   typedKwokClient,
		ManageNodesWithAnnotationSelector: manageNodesAnnotation,
		CIDR:                              podCIDR,
		NodeIP:                            nodeIP,
		PodPlayStageParallelism:           4,
		NodePlayStageParallelism:          4,
		NodeLeaseParallelism:              4,
		PodsOnNodeSyncParallelism:         1,
		EnablePodsOnNodeSyncListPager:     true,
		LocalStages:                       stages,
		ID:                                id,
	})
	if err != nil {
		return err
	}
	return ctr.Start(ctx)
}
