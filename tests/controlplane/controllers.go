package main

// A few kube-controller-manager controllers, run in-process from the same Go packages
// kube-controller-manager uses, so that the control plane behaves like a cluster where
// it matters to an operator's tests:
//
//   - namespace: a deleted namespace is emptied and goes away (instead of staying
//     Terminating forever);
//   - garbagecollector: objects whose ownerReferences point at a deleted owner are
//     deleted (cascading deletion, foreground and orphan propagation);
//   - serviceaccount: every namespace gets its "default" ServiceAccount;
//   - clusterrole-aggregation: labelled ClusterRoles fold into view/edit/admin;
//   - deployment, replicaset: a Deployment gets its ReplicaSet and the ReplicaSet its
//     Pods (rolling updates, scaling, status), which the scheduler (scheduler.go)
//     places and KWOK (kwok.go) "runs";
//   - nodelifecycle: the node.kubernetes.io/not-ready:NoSchedule taint the API server
//     puts on every new Node (admission plugin TaintNodesByCondition) is lifted once
//     the Node reports Ready, and a Node whose heartbeat stops for 50 s is marked
//     Unknown and tainted again, with kube-controller-manager's defaults. (Its
//     companion, the taint-eviction controller that deletes Pods from such Nodes, does
//     not run: the Pods stay, marked not Ready);
//   - podgc: Pods bound to a Node that no longer exists are deleted (after 40 s, checked
//     every 20 s), so a test that deletes its simulated Nodes leaves no Pod behind.
//
// Everything else of kube-controller-manager (Jobs, StatefulSets, node lifecycle,
// endpoints, ...) is left out.

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/controller-manager/pkg/informerfactory"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/controller/clusterroleaggregation"
	"k8s.io/kubernetes/pkg/controller/deployment"
	"k8s.io/kubernetes/pkg/controller/garbagecollector"
	namespacecontroller "k8s.io/kubernetes/pkg/controller/namespace"
	nodelifecycle "k8s.io/kubernetes/pkg/controller/nodelifecycle"
	"k8s.io/kubernetes/pkg/controller/podgc"
	"k8s.io/kubernetes/pkg/controller/replicaset"
	serviceaccountcontroller "k8s.io/kubernetes/pkg/controller/serviceaccount"
)

var knownControllers = []string{"namespace", "garbagecollector", "serviceaccount", "clusterrole-aggregation",
	"deployment", "replicaset", "nodelifecycle", "podgc"}

// parseControllers turns "namespace,garbagecollector" (or "*" / "" / "none") into a set.
func parseControllers(spec string) (map[string]bool, error) {
	out := map[string]bool{}
	spec = strings.TrimSpace(spec)
	if spec == "" || spec == "none" {
		return out, nil
	}
	for _, name := range strings.Split(spec, ",") {
		name = strings.TrimSpace(name)
		if name == "*" {
			for _, k := range knownControllers {
				out[k] = true
			}
			continue
		}
		known := false
		for _, k := range knownControllers {
			known = known || k == name
		}
		if !known {
			return nil, fmt.Errorf("unknown controller %q (known: %s)", name, strings.Join(knownControllers, ", "))
		}
		out[name] = true
	}
	return out, nil
}

// startControllers builds the enabled controllers against the API server at cfg and
// runs them until ctx is done. It returns once they are started.
func startControllers(ctx context.Context, cfg *rest.Config, enabled map[string]bool) error {
	if len(enabled) == 0 {
		return nil
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 500, 1000 // a local test server: don't throttle the controllers

	withAgent := func(name string) *rest.Config {
		return rest.AddUserAgent(rest.CopyConfig(cfg), "meshplane-test-controlplane/"+name)
	}
	client, err := kubernetes.NewForConfig(withAgent("controllers"))
	if err != nil {
		return err
	}
	metadataClient, err := metadata.NewForConfig(withAgent("controllers"))
	if err != nil {
		return err
	}
	const resync = 12 * time.Hour
	typed := informers.NewSharedInformerFactory(client, resync)
	meta := metadatainformer.NewSharedInformerFactory(metadataClient, resync)
	informersStarted := make(chan struct{})
	var runs []func(context.Context)

	if enabled["namespace"] {
		nsClient, err := kubernetes.NewForConfig(withAgent("namespace-controller"))
		if err != nil {
			return err
		}
		nsMeta, err := metadata.NewForConfig(withAgent("namespace-controller"))
		if err != nil {
			return err
		}
		nc := namespacecontroller.NewNamespaceController(ctx, nsClient, nsMeta,
			nsClient.Discovery().ServerPreferredNamespacedResources,
			typed.Core().V1().Namespaces(), 5*time.Minute, v1.FinalizerKubernetes)
		runs = append(runs, func(ctx context.Context) { nc.Run(ctx, 5) })
	}

	if enabled["serviceaccount"] {
		sac, err := serviceaccountcontroller.NewServiceAccountsController(klog.FromContext(ctx),
			typed.Core().V1().ServiceAccounts(), typed.Core().V1().Namespaces(), client,
			serviceaccountcontroller.DefaultServiceAccountsControllerOptions())
		if err != nil {
			return fmt.Errorf("serviceaccount controller: %w", err)
		}
		runs = append(runs, func(ctx context.Context) { sac.Run(ctx, 1) })
	}

	if enabled["clusterrole-aggregation"] {
		// ClusterRoles labelled aggregate-to-view/edit/admin (as meshplane's chart ships)
		// are folded into the built-in roles by this controller, as in a real cluster.
		aggClient, err := kubernetes.NewForConfig(withAgent("clusterrole-aggregation-controller"))
		if err != nil {
			return err
		}
		agg := clusterroleaggregation.NewClusterRoleAggregation(typed.Rbac().V1().ClusterRoles(), aggClient.RbacV1())
		runs = append(runs, func(ctx context.Context) { agg.Run(ctx, 1) })
	}

	// Worker counts are kube-controller-manager's defaults (--concurrent-deployment-syncs,
	// --concurrent-replicaset-syncs); clients are one per controller, as there.
	if enabled["deployment"] {
		dClient, err := kubernetes.NewForConfig(withAgent("deployment-controller"))
		if err != nil {
			return err
		}
		dc, err := deployment.NewDeploymentController(ctx, typed.Apps().V1().Deployments(),
			typed.Apps().V1().ReplicaSets(), typed.Core().V1().Pods(), dClient)
		if err != nil {
			return fmt.Errorf("deployment controller: %w", err)
		}
		runs = append(runs, func(ctx context.Context) { dc.Run(ctx, 5) })
	}

	if enabled["replicaset"] {
		rsClient, err := kubernetes.NewForConfig(withAgent("replicaset-controller"))
		if err != nil {
			return err
		}
		rsc := replicaset.NewReplicaSetController(ctx, typed.Apps().V1().ReplicaSets(),
			typed.Core().V1().Pods(), rsClient, replicaset.BurstReplicas)
		runs = append(runs, func(ctx context.Context) { rsc.Run(ctx, 5) })
	}

	if enabled["nodelifecycle"] {
		nlClient, err := kubernetes.NewForConfig(withAgent("node-controller"))
		if err != nil {
			return err
		}
		// kube-controller-manager's defaults: --node-monitor-period 5s,
		// --node-startup-grace-period 60s, --node-monitor-grace-period 50s, eviction
		// rates 0.1 and 0.01, large cluster 50 nodes, unhealthy zone 55%.
		nlc, err := nodelifecycle.NewNodeLifecycleController(ctx, typed.Coordination().V1().Leases(),
			typed.Core().V1().Pods(), typed.Core().V1().Nodes(), typed.Apps().V1().DaemonSets(), nlClient,
			5*time.Second, 60*time.Second, 50*time.Second, 0.1, 0.01, 50, 0.55)
		if err != nil {
			return fmt.Errorf("node lifecycle controller: %w", err)
		}
		runs = append(runs, nlc.Run)
	}

	if enabled["podgc"] {
		pgClient, err := kubernetes.NewForConfig(withAgent("pod-garbage-collector"))
		if err != nil {
			return err
		}
		// 12500: kube-controller-manager's --terminated-pod-gc-threshold default.
		pgc := podgc.NewPodGC(ctx, pgClient, typed.Core().V1().Pods(), typed.Core().V1().Nodes(), 12500)
		runs = append(runs, pgc.Run)
	}

	if enabled["garbagecollector"] {
		gcConfig := withAgent("generic-garbage-collector")
		gcClient, err := kubernetes.NewForConfig(gcConfig)
		if err != nil {
			return err
		}
		gcMeta, err := metadata.NewForConfig(gcConfig)
		if err != nil {
			return err
		}
		mapperDiscovery, err := discovery.NewDiscoveryClientForConfig(gcConfig)
		if err != nil {
			return err
		}
		mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(mapperDiscovery))
		syncDiscovery, err := discovery.NewDiscoveryClientForConfig(gcConfig)
		if err != nil {
			return err
		}
		gc, err := garbagecollector.NewGarbageCollector(ctx, gcClient, gcMeta, mapper,
			garbagecollector.DefaultIgnoredResources(),
			informerfactory.NewInformerFactory(typed, meta), informersStarted)
		if err != nil {
			return fmt.Errorf("garbage collector: %w", err)
		}
		// kube-controller-manager re-reads discovery every 30s; new CRDs matter to
		// tests within seconds.
		const syncPeriod = 2 * time.Second
		runs = append(runs,
			func(ctx context.Context) { gc.Run(ctx, 5, 30*time.Second) },
			func(ctx context.Context) { gc.Sync(ctx, syncDiscovery, syncPeriod) },
		)
	}

	for _, run := range runs {
		go run(ctx)
	}
	typed.Start(ctx.Done())
	meta.Start(ctx.Done())
	close(informersStarted)

	names := make([]string, 0, len(enabled))
	for name := range enabled {
		names = append(names, name)
	}
	sort.Strings(names)
	klog.InfoS("meshplane-test-controlplane: controllers started", "controllers", names)
	return nil
}
