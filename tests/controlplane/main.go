// Command meshplane-test-controlplane runs a real, minimal Kubernetes control plane
// for meshplane's end-to-end tests: an embedded etcd and the upstream kube-apiserver
// (k8s.io/kubernetes/cmd/kube-apiserver/app) in one process, listening on 127.0.0.1
// only. It is the "envtest" approach, built from Go modules instead of downloaded
// binaries.
//
// It generates its own CA, serving certificate, admin client certificate
// (CN=meshplane-admin, O=system:masters) and service-account signing key (or reuses
// those of an earlier start on the same --data-dir, so that a restart on the same
// --apiserver-port keeps every kubeconfig and ServiceAccount token valid), enforces
// RBAC, writes an admin kubeconfig, waits until /readyz answers 200 and then prints
//
//	MESHPLANE-CONTROLPLANE READY server=https://127.0.0.1:PORT kubeconfig=PATH
//
// on stdout. It stops on SIGTERM/SIGINT, or when its standard input reaches EOF if
// --exit-on-stdin-eof is given (so it dies with the test process that started it).
//
// It is a "cluster in a box": besides the API server, in the same process, run
//
//   - eight kube-controller-manager controllers (controllers.go; --controllers picks
//     them): namespace (deleted namespaces are emptied and go away), garbagecollector
//     (ownerReferences cascade), serviceaccount (the "default" ServiceAccount of each
//     namespace), clusterrole-aggregation (labelled ClusterRoles fold into
//     view/edit/admin), deployment and replicaset (Deployments get ReplicaSets and
//     Pods), nodelifecycle (a Ready Node loses its not-ready taint) and podgc (Pods of
//     deleted Nodes are deleted);
//   - the real kube-scheduler (scheduler.go; --scheduler=false leaves it out), as
//     CN=system:kube-scheduler, leader election off: it binds Pods to Nodes or marks
//     them Unschedulable;
//   - KWOK (kwok.go; --kwok=false leaves it out), a simulated kubelet: Nodes annotated
//     kwok.x-k8s.io/node=fake (--kwok-manage-nodes) become Ready and Pods bound to them
//     become Running with a pod IP, without any container.
//
// There are no Nodes until a test creates them (see docs/e2e.md), so until then every
// Pod stays Pending, Unschedulable. Jobs, StatefulSets, node lifecycle, kube-proxy and
// DNS do not run.
//
// Usage:
//
//	meshplane-test-controlplane --data-dir DIR --kubeconfig PATH [flags] [-- extra kube-apiserver flags]
package main

import (
	"bufio"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format, as the real binary
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics, as the real binary
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric, as the real binary
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

const readyPrefix = "MESHPLANE-CONTROLPLANE READY"

type options struct {
	dataDir        string
	kubeconfig     string
	apiserverPort  int
	etcdPort       int
	etcdPeerPort   int
	serviceCIDR    string
	readyTimeout   time.Duration
	exitOnStdinEOF bool
	verbosity      int
	user           string
	controllers    string
	scheduler      bool
	kwok           bool
	kwokManage     string
	kwokPodCIDR    string
}

func main() {
	os.Exit(run())
}

func run() int {
	var o options
	fs := flag.NewFlagSet("meshplane-test-controlplane", flag.ContinueOnError)
	fs.StringVar(&o.dataDir, "data-dir", "", "directory for etcd data and generated certificates (required; created if missing)")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "where to write the admin kubeconfig (default DATA_DIR/admin.kubeconfig)")
	fs.IntVar(&o.apiserverPort, "apiserver-port", 0, "kube-apiserver secure port on 127.0.0.1 (0 = pick a free port)")
	fs.IntVar(&o.etcdPort, "etcd-port", 0, "etcd client port on 127.0.0.1 (0 = pick a free port)")
	fs.IntVar(&o.etcdPeerPort, "etcd-peer-port", 0, "etcd peer port on 127.0.0.1 (0 = pick a free port)")
	fs.StringVar(&o.serviceCIDR, "service-cluster-ip-range", "10.0.0.0/24", "service cluster IP range")
	fs.DurationVar(&o.readyTimeout, "ready-timeout", 3*time.Minute, "give up if /readyz is not 200 within this time")
	fs.BoolVar(&o.exitOnStdinEOF, "exit-on-stdin-eof", false, "shut down when standard input is closed (the parent died)")
	fs.IntVar(&o.verbosity, "v", 0, "kube-apiserver log verbosity")
	fs.StringVar(&o.controllers, "controllers", "*",
		"in-process kube-controller-manager controllers to run: '*' (all of "+strings.Join(knownControllers, ",")+
			"), a comma-separated list, or 'none'")
	fs.BoolVar(&o.scheduler, "scheduler", true, "run the real kube-scheduler in-process (binds Pods to Nodes)")
	fs.BoolVar(&o.kwok, "kwok", true, "run KWOK in-process (simulated kubelet: managed Nodes get Ready, their Pods Running)")
	fs.StringVar(&o.kwokManage, "kwok-manage-nodes", "kwok.x-k8s.io/node=fake",
		"annotation selector of the Nodes KWOK manages")
	fs.StringVar(&o.kwokPodCIDR, "kwok-pod-cidr", "10.244.0.0/16",
		"range of the pod IPs KWOK hands out (must not overlap --service-cluster-ip-range)")
	fs.StringVar(&o.user, "admin-user", "meshplane-admin", "common name of the admin client certificate (group system:masters)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: %s --data-dir DIR [--kubeconfig PATH] [flags] [-- extra kube-apiserver flags]\n", os.Args[0])
		fs.PrintDefaults()
	}
	args, extra := splitArgs(os.Args[1:])
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	controllers, err := parseControllers(o.controllers)
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: --controllers: %v\n", err)
		return 2
	}
	if o.dataDir == "" {
		fmt.Fprintln(os.Stderr, "error: --data-dir is required")
		fs.Usage()
		return 2
	}
	if err = os.MkdirAll(o.dataDir, 0o700); err != nil {
		return fail("create data dir: %v", err)
	}
	dataDir, err := filepath.Abs(o.dataDir)
	if err != nil {
		return fail("data dir: %v", err)
	}
	o.dataDir = dataDir
	if o.kubeconfig == "" {
		o.kubeconfig = filepath.Join(o.dataDir, "admin.kubeconfig")
	}
	if o.kubeconfig, err = filepath.Abs(o.kubeconfig); err != nil {
		return fail("kubeconfig path: %v", err)
	}

	ports, err := freePorts(o.apiserverPort, o.etcdPort, o.etcdPeerPort)
	if err != nil {
		return fail("pick free ports: %v", err)
	}
	o.apiserverPort, o.etcdPort, o.etcdPeerPort = ports[0], ports[1], ports[2]

	// A restart on the same data directory keeps the CA, the certificates and the
	// service-account key: kubeconfigs (CA data) and ServiceAccount tokens (signed by
	// sa.key) minted before the restart stay valid, as they would across a restart of
	// a real cluster's API server.
	pkiDir := filepath.Join(o.dataDir, "pki")
	pki, err := loadPKI(pkiDir, o.user, o.serviceCIDR, time.Now())
	if err == nil {
		fmt.Fprintf(os.Stderr, "meshplane-test-controlplane: reusing the CA, certificates and keys of %s\n", pkiDir)
	} else {
		if !errors.Is(err, errNoPKI) {
			fmt.Fprintf(os.Stderr, "meshplane-test-controlplane: not reusing %s (%v): generating new certificates and keys\n", pkiDir, err)
		}
		if pki, err = generatePKI(pkiDir, o.user, o.serviceCIDR); err != nil {
			return fail("generate certificates: %v", err)
		}
	}

	start := time.Now()
	etcd, err := startEtcd(filepath.Join(o.dataDir, "etcd"), o.etcdPort, o.etcdPeerPort)
	if err != nil {
		return fail("start etcd: %v", err)
	}
	defer func() {
		etcd.Close()
		fmt.Fprintln(os.Stderr, "meshplane-test-controlplane: etcd stopped")
	}()
	fmt.Fprintf(os.Stderr, "meshplane-test-controlplane: etcd ready on http://127.0.0.1:%d after %s\n", o.etcdPort, time.Since(start).Round(time.Millisecond))

	server := fmt.Sprintf("https://127.0.0.1:%d", o.apiserverPort)
	apiArgs := []string{
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(o.apiserverPort),
		"--etcd-servers=" + fmt.Sprintf("http://127.0.0.1:%d", o.etcdPort),
		"--cert-dir=" + filepath.Join(o.dataDir, "pki"),
		"--tls-cert-file=" + pki.servingCert,
		"--tls-private-key-file=" + pki.servingKey,
		"--client-ca-file=" + pki.caCert,
		"--service-account-key-file=" + pki.saKey,
		"--service-account-signing-key-file=" + pki.saKey,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range=" + o.serviceCIDR,
		"--authorization-mode=RBAC",
		"--anonymous-auth=false",
		"--allow-privileged=true",
		// The ServiceAccount admission plugin rejects a Pod until the namespace's
		// "default" ServiceAccount exists, which the serviceaccount controller creates
		// only a moment after the namespace (and not at all with --controllers=none).
		// envtest disables it too. All other default plugins stay on.
		"--disable-admission-plugins=ServiceAccount",
		// The loopback advertise address is not a valid Endpoints address.
		"--endpoint-reconciler-type=none",
		"--profiling=false",
		"--v=" + strconv.Itoa(o.verbosity),
	}
	apiArgs = append(apiArgs, extra...)

	// kube-apiserver installs its own SIGTERM/SIGINT handler (first signal: graceful
	// shutdown, second: exit). Closing stdin is turned into a SIGTERM to ourselves.
	if o.exitOnStdinEOF {
		go func() {
			_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin))
			fmt.Fprintln(os.Stderr, "meshplane-test-controlplane: stdin closed, shutting down")
			_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
			time.Sleep(30 * time.Second)
			fmt.Fprintln(os.Stderr, "meshplane-test-controlplane: shutdown took too long, exiting")
			os.Exit(1)
		}()
	}

	runCtx, cancelRun := context.WithCancel(context.Background())
	defer cancelRun()
	// Stop the in-process controllers as soon as shutdown begins: their open watches
	// would otherwise hold the apiserver's graceful shutdown for its full timeout.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		select {
		case <-signals:
			cancelRun()
		case <-runCtx.Done():
		}
	}()
	var wg sync.WaitGroup
	var startFailed atomic.Bool
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := waitReady(runCtx, server, pki, o.readyTimeout); err != nil {
			if runCtx.Err() != nil {
				return // the apiserver already exited
			}
			fmt.Fprintf(os.Stderr, "meshplane-test-controlplane: %v\n", err)
			startFailed.Store(true)
			_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
			return
		}
		restConfig := &rest.Config{Host: server, TLSClientConfig: rest.TLSClientConfig{
			CAData: pki.caPEM, CertData: pki.adminCertPEM, KeyData: pki.adminKeyPEM}}
		if err := startControllers(runCtx, restConfig, controllers); err != nil {
			fmt.Fprintf(os.Stderr, "meshplane-test-controlplane: start controllers: %v\n", err)
			startFailed.Store(true)
			_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
			return
		}
		if err := startSimulation(runCtx, o, server, pki); err != nil {
			fmt.Fprintf(os.Stderr, "meshplane-test-controlplane: %v\n", err)
			startFailed.Store(true)
			_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
			return
		}
		if err := writeKubeconfig(o.kubeconfig, server, pki.caPEM, o.user, pki.adminCertPEM, pki.adminKeyPEM); err != nil {
			fmt.Fprintf(os.Stderr, "meshplane-test-controlplane: write kubeconfig: %v\n", err)
			startFailed.Store(true)
			_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
			return
		}
		fmt.Fprintf(os.Stderr, "meshplane-test-controlplane: ready after %s\n", time.Since(start).Round(time.Millisecond))
		fmt.Printf("%s server=%s kubeconfig=%s\n", readyPrefix, server, o.kubeconfig)
	}()

	cmd := app.NewAPIServerCommand()
	cmd.SetArgs(apiArgs)
	code := cli.Run(cmd)
	cancelRun()
	wg.Wait()
	fmt.Fprintf(os.Stderr, "meshplane-test-controlplane: kube-apiserver exited with code %d\n", code)
	if code == 0 && startFailed.Load() {
		return 1
	}
	return code
}

// startSimulation starts the kube-scheduler and KWOK, as enabled, each with its own
// kubeconfig (and client certificate) in the data directory.
func startSimulation(ctx context.Context, o options, server string, pki *pkiFiles) error {
	if o.scheduler {
		path := filepath.Join(o.dataDir, "scheduler.kubeconfig")
		if err := writeKubeconfig(path, server, pki.caPEM, schedulerUser, pki.schedulerCertPEM, pki.schedulerKeyPEM); err != nil {
			return fmt.Errorf("write scheduler kubeconfig: %w", err)
		}
		if err := startScheduler(ctx, path); err != nil {
			return err
		}
	}
	if o.kwok {
		path := filepath.Join(o.dataDir, "kwok.kubeconfig")
		if err := writeKubeconfig(path, server, pki.caPEM, kwokUser, pki.kwokCertPEM, pki.kwokKeyPEM); err != nil {
			return fmt.Errorf("write kwok kubeconfig: %w", err)
		}
		// All simulated Nodes share this machine's loopback address as their InternalIP.
		if err := startKwok(ctx, path, o.kwokManage, o.kwokPodCIDR, "127.0.0.1"); err != nil {
			return fmt.Errorf("start kwok: %w", err)
		}
	}
	return nil
}

func fail(format string, a ...any) int {
	fmt.Fprintf(os.Stderr, "meshplane-test-controlplane: error: "+format+"\n", a...)
	return 1
}

// splitArgs separates our flags from the extra kube-apiserver flags after "--".
func splitArgs(args []string) (ours, extra []string) {
	for i, a := range args {
		if a == "--" {
			return args[:i], args[i+1:]
		}
	}
	return args, nil
}

// freePorts returns the given ports, replacing each 0 by a free port on 127.0.0.1.
// All listeners are held open until every port is chosen, so they are distinct.
func freePorts(want ...int) ([]int, error) {
	out := make([]int, len(want))
	var held []net.Listener
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	for i, p := range want {
		if p != 0 {
			out[i] = p
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		held = append(held, l)
		out[i] = l.Addr().(*net.TCPAddr).Port
	}
	return out, nil
}

func startEtcd(dir string, clientPort, peerPort int) (*embed.Etcd, error) {
	cfg := embed.NewConfig()
	cfg.Name = "meshplane-test"
	cfg.Dir = dir
	clientURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", clientPort)}
	peerURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", peerPort)}
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = "error"
	cfg.UnsafeNoFsync = true // throw-away test data: speed over durability
	cfg.QuotaBackendBytes = 2 << 30
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, err
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, nil
	case err := <-e.Err():
		e.Close()
		return nil, err
	case <-time.After(60 * time.Second):
		e.Server.Stop()
		e.Close()
		return nil, errors.New("etcd did not become ready within 60s")
	}
}

type pkiFiles struct {
	caCert, caKey               string
	servingCert, servingKey     string
	adminCert, adminKey         string
	schedulerCert, schedulerKey string
	kwokCert, kwokKey           string
	saKey                       string
	caPEM                       []byte
	adminCertPEM                []byte
	adminKeyPEM                 []byte
	schedulerCertPEM            []byte
	schedulerKeyPEM             []byte
	kwokCertPEM                 []byte
	kwokKeyPEM                  []byte
}

const (
	// The identity the built-in RBAC grants the scheduler's permissions to
	// (ClusterRoleBindings system:kube-scheduler and system:volume-scheduler).
	schedulerUser = "system:kube-scheduler"
	// KWOK writes Node and Pod status, deletes Pods and records Events, as a kubelet
	// does; a real kubelet's identity (system:node:NAME) is per Node and held to its
	// own Node by the NodeRestriction admission plugin, so KWOK, which plays all the
	// Nodes, gets an admin identity of its own instead (visible in managedFields).
	kwokUser = "meshplane-kwok"
)

// pkiPaths names the files of the PKI in dir.
func pkiPaths(dir string) *pkiFiles {
	return &pkiFiles{
		caCert: filepath.Join(dir, "ca.crt"), caKey: filepath.Join(dir, "ca.key"),
		servingCert: filepath.Join(dir, "apiserver.crt"), servingKey: filepath.Join(dir, "apiserver.key"),
		adminCert: filepath.Join(dir, "admin.crt"), adminKey: filepath.Join(dir, "admin.key"),
		schedulerCert: filepath.Join(dir, "scheduler.crt"), schedulerKey: filepath.Join(dir, "scheduler.key"),
		kwokCert: filepath.Join(dir, "kwok.crt"), kwokKey: filepath.Join(dir, "kwok.key"),
		saKey: filepath.Join(dir, "sa.key"),
	}
}

// serviceIP is the first address of the service range: the "kubernetes" service's IP.
func serviceIP(serviceCIDR string) (net.IP, error) {
	_, cidr, err := net.ParseCIDR(serviceCIDR)
	if err != nil {
		return nil, fmt.Errorf("service-cluster-ip-range: %w", err)
	}
	svcIP := make(net.IP, len(cidr.IP))
	copy(svcIP, cidr.IP)
	svcIP[len(svcIP)-1]++
	return svcIP, nil
}

func generatePKI(dir, adminUser, serviceCIDR string) (*pkiFiles, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := pkiPaths(dir)
	now := time.Now().Add(-time.Hour)
	notAfter := now.Add(365 * 24 * time.Hour)

	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "meshplane-test-ca"},
		NotBefore:             now,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	p.caPEM = pemBlock("CERTIFICATE", caDER)
	if err := writeFile(p.caCert, p.caPEM); err != nil {
		return nil, err
	}
	if err := writeKey(p.caKey, caKey); err != nil {
		return nil, err
	}

	svcIP, err := serviceIP(serviceCIDR)
	if err != nil {
		return nil, err
	}

	servingTmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.IPv6loopback, svcIP},
	}
	if _, _, err := issue(p.servingCert, p.servingKey, servingTmpl, ca, caKey); err != nil {
		return nil, err
	}

	adminTmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: adminUser, Organization: []string{"system:masters"}},
		NotBefore:    now,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if p.adminCertPEM, p.adminKeyPEM, err = issue(p.adminCert, p.adminKey, adminTmpl, ca, caKey); err != nil {
		return nil, err
	}
	clientTmpl := func(cn string, groups ...string) *x509.Certificate {
		return &x509.Certificate{
			SerialNumber: serial(),
			Subject:      pkix.Name{CommonName: cn, Organization: groups},
			NotBefore:    now,
			NotAfter:     notAfter,
			KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
	}
	if p.schedulerCertPEM, p.schedulerKeyPEM, err = issue(p.schedulerCert, p.schedulerKey,
		clientTmpl(schedulerUser), ca, caKey); err != nil {
		return nil, err
	}
	if p.kwokCertPEM, p.kwokKeyPEM, err = issue(p.kwokCert, p.kwokKey,
		clientTmpl(kwokUser, "system:masters"), ca, caKey); err != nil {
		return nil, err
	}

	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	if err := writeKey(p.saKey, saKey); err != nil {
		return nil, err
	}
	return p, nil
}

// errNoPKI: the data directory has no PKI yet (a first start).
var errNoPKI = errors.New("no certificates yet")

// pkiMinValidity is how long reused certificates must stay valid (they are made for a
// year; a data directory older than that gets a new PKI).
const pkiMinValidity = 24 * time.Hour

// loadPKI returns the PKI an earlier start wrote to dir, if every file is there and
// fits this start: each certificate parses, is signed by the CA, is valid from now for
// pkiMinValidity at least and matches its key; the serving certificate covers
// 127.0.0.1 and the service IP of serviceCIDR; the admin, scheduler and KWOK client
// certificates carry the identities this start uses; sa.key is an RSA key. Otherwise
// it says why (errNoPKI when no file exists at all) and nothing is reused: generatePKI
// then replaces every file, so a half-written or mismatched PKI is never mixed in.
func loadPKI(dir, adminUser, serviceCIDR string, now time.Time) (*pkiFiles, error) {
	p := pkiPaths(dir)
	all := []string{p.caCert, p.caKey, p.servingCert, p.servingKey, p.adminCert, p.adminKey,
		p.schedulerCert, p.schedulerKey, p.kwokCert, p.kwokKey, p.saKey}
	var missing []string
	for _, path := range all {
		if _, err := os.Stat(path); err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				return nil, err
			}
			missing = append(missing, filepath.Base(path))
		}
	}
	if len(missing) == len(all) {
		return nil, errNoPKI
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}

	ca, caPEM, err := loadCertAndKey(p.caCert, p.caKey, now)
	if err != nil {
		return nil, err
	}
	if !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("%s is not a CA certificate", p.caCert)
	}
	p.caPEM = caPEM.cert
	leaf := func(certPath, keyPath string, usage x509.ExtKeyUsage) (*x509.Certificate, *pemPair, error) {
		c, pems, err := loadCertAndKey(certPath, keyPath, now)
		if err != nil {
			return nil, nil, err
		}
		if err := c.CheckSignatureFrom(ca); err != nil {
			return nil, nil, fmt.Errorf("%s is not signed by %s: %w", certPath, p.caCert, err)
		}
		usable := false
		for _, u := range c.ExtKeyUsage {
			usable = usable || u == usage
		}
		if !usable {
			return nil, nil, fmt.Errorf("%s lacks the extended key usage it needs", certPath)
		}
		return c, pems, nil
	}

	serving, _, err := leaf(p.servingCert, p.servingKey, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return nil, err
	}
	svcIP, err := serviceIP(serviceCIDR)
	if err != nil {
		return nil, err
	}
	for _, ip := range []string{"127.0.0.1", svcIP.String()} {
		if err := serving.VerifyHostname(ip); err != nil {
			return nil, fmt.Errorf("%s: %w", p.servingCert, err)
		}
	}

	client := func(certPath, keyPath, cn string, groups ...string) (*pemPair, error) {
		c, pems, err := leaf(certPath, keyPath, x509.ExtKeyUsageClientAuth)
		if err != nil {
			return nil, err
		}
		subject := c.Subject
		if subject.CommonName != cn || strings.Join(subject.Organization, ",") != strings.Join(groups, ",") {
			return nil, fmt.Errorf("%s is for CN=%s O=%v, not CN=%s O=%v", certPath,
				subject.CommonName, subject.Organization, cn, groups)
		}
		return pems, nil
	}
	admin, err := client(p.adminCert, p.adminKey, adminUser, "system:masters")
	if err != nil {
		return nil, err
	}
	p.adminCertPEM, p.adminKeyPEM = admin.cert, admin.key
	sched, err := client(p.schedulerCert, p.schedulerKey, schedulerUser)
	if err != nil {
		return nil, err
	}
	p.schedulerCertPEM, p.schedulerKeyPEM = sched.cert, sched.key
	kwok, err := client(p.kwokCert, p.kwokKey, kwokUser, "system:masters")
	if err != nil {
		return nil, err
	}
	p.kwokCertPEM, p.kwokKeyPEM = kwok.cert, kwok.key

	saPEM, err := os.ReadFile(p.saKey)
	if err != nil {
		return nil, err
	}
	saKey, err := parseKey(saPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.saKey, err)
	}
	if _, ok := saKey.(*rsa.PrivateKey); !ok {
		return nil, fmt.Errorf("%s is not an RSA key", p.saKey)
	}
	return p, nil
}

type pemPair struct {
	cert, key []byte
}

// loadCertAndKey reads a PEM certificate and its PKCS#8 key, and checks that they
// belong together and that the certificate is valid from now for pkiMinValidity.
func loadCertAndKey(certPath, keyPath string, now time.Time) (*x509.Certificate, *pemPair, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, err
	}
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("%s holds no PEM certificate", certPath)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", certPath, err)
	}
	if now.Before(cert.NotBefore) || now.Add(pkiMinValidity).After(cert.NotAfter) {
		return nil, nil, fmt.Errorf("%s is valid from %s to %s only", certPath,
			cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("%s is not the key of %s", keyPath, certPath)
	}
	return cert, &pemPair{cert: certPEM, key: keyPEM}, nil
}

// parseKey reads a PEM "PRIVATE KEY" (PKCS#8), as writeKey and issue write them.
func parseKey(keyPEM []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("no PEM private key (PKCS#8)")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported key type %T", key)
	}
	return signer, nil
}

func issue(certPath, keyPath string, tmpl, ca *x509.Certificate, caKey crypto.Signer) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	certPEM = pemBlock("CERTIFICATE", der)
	if err := writeFile(certPath, certPEM); err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	keyPEM = pemBlock("PRIVATE KEY", keyDER)
	return certPEM, keyPEM, writeFile(keyPath, keyPEM)
}

func writeKey(path string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writeFile(path, pemBlock("PRIVATE KEY", der))
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		panic(err)
	}
	return n.Add(n, big.NewInt(1))
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func writeFile(path string, data []byte) error {
	return os.WriteFile(path, data, 0o600)
}

// waitReady polls /readyz with the admin certificate until it answers 200.
func waitReady(ctx context.Context, server string, p *pkiFiles, timeout time.Duration) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.caPEM)
	cert, err := tls.X509KeyPair(p.adminCertPEM, p.adminKeyPEM)
	if err != nil {
		return err
	}
	client := &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
		}},
	}
	deadline := time.Now().Add(timeout)
	last := "no answer yet"
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		resp, err := client.Get(server + "/readyz")
		if err != nil {
			last = err.Error()
		} else {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("kube-apiserver not ready after %s: %s", timeout, last)
}

// writeKubeconfig writes a kubeconfig for user (certificates inline) atomically.
func writeKubeconfig(path, server string, caPEM []byte, user string, certPEM, keyPEM []byte) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["meshplane-test"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	cfg.Contexts["meshplane-test"] = &clientcmdapi.Context{Cluster: "meshplane-test", AuthInfo: user, Namespace: "default"}
	cfg.CurrentContext = "meshplane-test"
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := clientcmd.WriteToFile(*cfg, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
