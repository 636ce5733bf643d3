package main

// A few kube-controller-manager controllers, run in-process from the same Go packages
// kube-controller-manager uses, so that the control plane behaves like a cluster where
// it matters to an operator's tests:
//
//   - namespace: a deleted namespace is emptied and goes away (instead of staying
//     Terminating forever);
//   - garbagecollector: objects whose ownerReferences point at a deleted owner are
//     deleted (cascading deletion, foreground and orphan propagation);
//   - serviceaccount: every namespace gets its "default" ServiceAccount.
//
// Everything else of kube-controller-manager (Deployments, ReplicaSets, Jobs, nodes,
// endpoints, ...) is left out: there is no kubelet, so no Pod ever runs.

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
	"k8s.io/kubernetes/pkg/controller/garbagecollector"
	namespacecontroller "k8s.io/kubernetes/pkg/controller/namespace"
	serviceaccountcontroller "k8s.io/kubernetes/pkg/controller/serviceaccount"
)

var knownControllers = []string{"namespace", "garbagecollector", "serviceaccount", "clusterrole-aggregation"}

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
