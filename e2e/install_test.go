package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/visitrelay/visitrelay/internal/pgtest"
)

// The install tests build the .deb packages, check them with lintian,
// dpkg-deb and systemd-analyze, and install, upgrade and purge them in a
// Debian root that debootstrap makes. They need root, network access to a
// Debian mirror, and a few minutes, so they run only with
// VISITRELAY_TEST_INSTALL=1 (make test-install).

// installSuite is the Debian release of the test root.
const installSuite = "bookworm"

func requireInstallTests(t *testing.T) {
	t.Helper()
	if os.Getenv("VISITRELAY_TEST_INSTALL") != "1" {
		t.Skip("set VISITRELAY_TEST_INSTALL=1 (make test-install) to build and install the packages")
	}
	if os.Geteuid() != 0 {
		t.Fatal("the install tests need root: dpkg, chroot and debootstrap")
	}
	for _, tool := range []string{"dpkg-deb", "lintian", "debootstrap", "systemd-analyze", "chroot"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the install tests need %s (apt-get install lintian debootstrap systemd): %v", tool, err)
		}
	}
}

// mustRun runs a command and fails the test with its output when it fails.
func mustRun(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// builtPackages caches the package builds of this test binary by version.
var builtPackages sync.Map

// buildPackages runs make deb for version and returns the appliance and
// gateway package files.
func buildPackages(t *testing.T, version string) (appliance, gateway string) {
	t.Helper()
	if dir, ok := builtPackages.Load(version); ok {
		return filepath.Join(dir.(string), "visitrelay-appliance_"+version+"-1_amd64.deb"),
			filepath.Join(dir.(string), "visitrelay-gateway_"+version+"-1_amd64.deb")
	}
	dir, err := os.MkdirTemp("", "visitrelay-deb-")
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, nil, "make", "-C", "..", "deb", "VERSION="+version, "ARCH=amd64", "DIST="+dir)
	builtPackages.Store(version, dir)
	return buildPackages(t, version)
}

func TestPackageContentsAndLint(t *testing.T) {
	requireInstallTests(t)
	appliancePkg, gatewayPkg := buildPackages(t, "0.1.0~test1")

	want := map[string][]string{
		appliancePkg: {
			"-rwxr-xr-x root/root ./usr/bin/visitrelay-appliance",
			"-rw-r----- root/root ./etc/visitrelay/appliance.yaml",
			"drwxr-x--- root/root ./etc/visitrelay/",
			"-rw-r--r-- root/root ./lib/systemd/system/visitrelay-appliance.service",
			"-rw-r--r-- root/root ./usr/share/doc/visitrelay-appliance/copyright",
		},
		gatewayPkg: {
			"-rwxr-xr-x root/root ./usr/bin/visitrelay-gateway",
			"-rw-r----- root/root ./etc/visitrelay/gateway.yaml",
			"-rw-r--r-- root/root ./lib/systemd/system/visitrelay-gateway.service",
			"-rw-r--r-- root/root ./lib/systemd/system/visitrelay-gateway-stop.timer",
			"-rw-r--r-- root/root ./lib/systemd/system/visitrelay-gateway-start.timer",
		},
	}
	for pkg, entries := range want {
		listing := debListing(mustRun(t, nil, "dpkg-deb", "-c", pkg))
		for _, entry := range entries {
			if !strings.Contains(listing, entry) {
				t.Errorf("%s lacks %q; contents:\n%s", filepath.Base(pkg), entry, listing)
			}
		}
		// Secrets are never shipped: only the example config is in /etc.
		for _, line := range strings.Split(listing, "\n") {
			if strings.Contains(line, "./etc/visitrelay/") && !strings.HasSuffix(line, ".yaml") && !strings.HasSuffix(line, "./etc/visitrelay/") {
				t.Errorf("%s ships %q under /etc/visitrelay", filepath.Base(pkg), line)
			}
		}
		conffiles := mustRun(t, nil, "dpkg-deb", "-f", pkg, "Package")
		info := mustRun(t, nil, "dpkg-deb", "-I", pkg, "conffiles")
		if !strings.Contains(info, "/etc/visitrelay/") {
			t.Errorf("%s: the config is not a conffile: %q", strings.TrimSpace(conffiles), info)
		}
	}

	// lintian exits non-zero on errors; warnings are allowed.
	cmd := exec.Command("lintian", "--tag-display-limit", "0", appliancePkg, gatewayPkg)
	out, err := cmd.CombinedOutput()
	t.Logf("lintian:\n%s", out)
	if err != nil {
		t.Errorf("lintian: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "E:") {
			t.Errorf("lintian error: %s", line)
		}
	}

	root := t.TempDir()
	for _, pkg := range []string{appliancePkg, gatewayPkg} {
		mustRun(t, nil, "dpkg-deb", "-x", pkg, root)
	}
	// systemd-analyze reads the units in a root that also has the host's
	// units (for the targets they name) and /bin/true.
	mustRun(t, nil, "cp", "-an", "/lib/systemd/system/.", filepath.Join(root, "lib/systemd/system/"))
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustRun(t, nil, "cp", "/bin/true", filepath.Join(root, "bin/true"))
	units := []string{"visitrelay-appliance.service", "visitrelay-gateway.service", "visitrelay-gateway-stop.service",
		"visitrelay-gateway-stop.timer", "visitrelay-gateway-start.timer"}
	for _, unit := range units {
		out := mustRun(t, nil, "systemd-analyze", "verify", "--root="+root, "lib/systemd/system/"+unit)
		if strings.TrimSpace(out) != "" {
			t.Errorf("systemd-analyze verify %s: %s", unit, out)
		}
	}
	for _, unit := range units[:2] {
		out := mustRun(t, nil, "systemd-analyze", "security", "--offline=true", "--root="+root, "lib/systemd/system/"+unit)
		score := out[strings.LastIndex(out, "Overall exposure level"):]
		t.Logf("systemd-analyze security: %s", strings.TrimSpace(score))
		fields := strings.Fields(score)
		level, err := strconv.ParseFloat(fields[len(fields)-3], 64)
		if err != nil {
			t.Fatalf("parse exposure level from %q: %v", score, err)
		}
		if level > 2.0 {
			t.Errorf("%s exposure level %.1f, want at most 2.0", unit, level)
		}
	}
}

// debListing keeps the mode, owner and path of each dpkg-deb -c line.
func debListing(listing string) string {
	var lines []string
	for _, line := range strings.Split(listing, "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		lines = append(lines, f[0]+" "+f[1]+" "+f[len(f)-1])
	}
	return strings.Join(lines, "\n")
}

// debianRoot is a Debian system that debootstrap made, for dpkg to install
// into with chroot.
type debianRoot struct {
	dir string
}

func newDebianRoot(t *testing.T) debianRoot {
	t.Helper()
	dir, err := os.MkdirTemp("/var/tmp", "visitrelay-root-")
	if err != nil {
		t.Fatal(err)
	}
	// MkdirTemp makes the directory 0700; as the root's "/" it must let the
	// visitrelay user through.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Unmount(filepath.Join(dir, "proc"), syscall.MNT_DETACH)
		_ = os.RemoveAll(dir)
	})
	start := time.Now()
	mustRun(t, nil, "debootstrap", "--variant=minbase", "--include=adduser,init-system-helpers", installSuite, dir, "http://deb.debian.org/debian")
	t.Logf("debootstrap %s took %s", installSuite, time.Since(start).Round(time.Second))
	if err := syscall.Mount("proc", filepath.Join(dir, "proc"), "proc", 0, ""); err != nil {
		t.Fatalf("mount /proc in the root: %v", err)
	}
	return debianRoot{dir: dir}
}

func (r debianRoot) path(p string) string { return filepath.Join(r.dir, p) }

// dpkg runs dpkg inside the root with the package files copied in.
func (r debianRoot) dpkg(t *testing.T, args ...string) string {
	t.Helper()
	var chrootArgs []string
	for _, a := range args {
		if strings.HasSuffix(a, ".deb") {
			dst := "/tmp/" + filepath.Base(a)
			mustRun(t, nil, "cp", a, r.path(dst))
			a = dst
		}
		chrootArgs = append(chrootArgs, a)
	}
	return mustRun(t, nil, "chroot", append([]string{r.dir, "dpkg"}, chrootArgs...)...)
}

// writeFile writes a file in the root, owned by root:visitrelay 0640 as
// the README asks IT to keep secrets and config.
func (r debianRoot) writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(r.path(p), []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
	mustRun(t, nil, "chroot", r.dir, "chown", "root:visitrelay", p)
	mustRun(t, nil, "chmod", "0640", r.path(p))
}

// installedService is an installed binary running in the root as the visitrelay
// user, the way its systemd unit runs it.
type installedService struct {
	name   string
	cmd    *exec.Cmd
	exited chan error // receives the exit status once
	log    *os.File
	notify *net.UnixConn
}

// startService starts /usr/bin/NAME run in the root, with a notify socket
// like systemd's, and waits for READY=1.
func (r debianRoot) startService(t *testing.T, name string, env ...string) *installedService {
	t.Helper()
	socket := "/run/" + name + ".notify"
	_ = os.Remove(r.path(socket))
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: r.path(socket), Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen on notify socket: %v", err)
	}
	if err := os.Chmod(r.path(socket), 0o666); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.OpenFile(r.path("/var/log/"+name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("chroot", "--userspec=visitrelay:visitrelay", r.dir, "/usr/bin/"+name, "run")
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "NOTIFY_SOCKET=" + socket}, env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	s := &installedService{name: name, cmd: cmd, exited: make(chan error, 1), log: logFile, notify: conn}
	go func() { s.exited <- cmd.Wait() }()
	t.Cleanup(func() { s.stop(t) })

	deadline := time.Now().Add(2 * time.Minute)
	buf := make([]byte, 512)
	for time.Now().Before(deadline) {
		select {
		case err := <-s.exited:
			s.exited <- err
			t.Fatalf("%s exited before READY=1: %v\nlog:\n%s", name, err, s.logText())
		default:
		}
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		n, err := conn.Read(buf)
		if err == nil && strings.Contains(string(buf[:n]), "READY=1") {
			return s
		}
	}
	t.Fatalf("%s sent no READY=1 within 2m\nlog:\n%s", name, s.logText())
	return nil
}

func (s *installedService) logText() string {
	data, _ := os.ReadFile(s.log.Name())
	return string(data)
}

// stop sends SIGTERM, as systemctl stop does, and waits for the exit.
func (s *installedService) stop(t *testing.T) {
	t.Helper()
	if s.notify == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.exited:
		if err != nil {
			t.Errorf("%s exited with %v after SIGTERM\nlog:\n%s", s.name, err, s.logText())
		}
	case <-time.After(60 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		t.Errorf("%s did not stop within 60s of SIGTERM", s.name)
	}
	s.notify.Close()
	s.notify = nil
	s.log.Close()
}

// visitClient posts visits to the installed gateway over HTTPS, trusting
// its self-signed certificate.
type visitClient struct {
	base  string
	http  *http.Client
	token string
}

func newVisitClient(t *testing.T, base string, certFile string) *visitClient {
	t.Helper()
	pemData, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatalf("read the gateway's self-signed certificate: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemData)
	return &visitClient{base: base, http: &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}}
}

func (c *visitClient) do(method, path string, body any) (int, []byte, error) {
	data, _ := json.Marshal(body)
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(data))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	_, err = out.ReadFrom(resp.Body)
	return resp.StatusCode, out.Bytes(), err
}

// login waits until the directory has reached the gateway and logs in.
func (c *visitClient) login(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		status, body, err := c.do(http.MethodPost, "/api/v1/login", map[string]string{"username": "anna.berger", "password": "cedar-willow-69"})
		if err == nil && status == http.StatusOK {
			var answer struct{ Token string }
			if err := json.Unmarshal(body, &answer); err != nil {
				t.Fatal(err)
			}
			c.token = answer.Token
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("login to the installed gateway: status %d %s: %v", status, body, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// post posts n new visits and returns their ids.
func (c *visitClient) post(t *testing.T, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		id := uuid.NewString()
		status, body, err := c.do(http.MethodPost, "/api/v1/visits", map[string]any{
			"visitId": id, "clientId": "101", "userId": "23", "proposedDevices": []int{1, 2}, "soldDevices": []int{2},
			"dateTime": time.Now().Add(-time.Duration(i) * time.Minute).Format(time.RFC3339),
		})
		if err != nil || status != http.StatusCreated {
			t.Fatalf("post visit: status %d %s: %v", status, body, err)
		}
		ids = append(ids, id)
	}
	return ids
}

// installedVisitIDs returns the visit ids in the database.
func installedVisitIDs(t *testing.T, dsn string) map[string]bool {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatalf("connect to database: %v", err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), "SELECT visit_id::text FROM visitrelay.visits")
	if err != nil {
		t.Fatalf("read visits: %v", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("read visits: %v", err)
	}
	set := map[string]bool{}
	for _, id := range ids {
		set[id] = true
	}
	return set
}

func waitInstalledStored(t *testing.T, dsn string, want []string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		got := installedVisitIDs(t, dsn)
		missing := 0
		for _, id := range want {
			if !got[id] {
				missing++
			}
		}
		if missing == 0 {
			if len(got) != len(want) {
				t.Fatalf("database has %d visits, want exactly %d", len(got), len(want))
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d visits not in the database after 2m", missing, len(want))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// siteStreamMessages reads the message count of the appliance's VISITS
// stream through its loopback NATS port.
func siteStreamMessages(t *testing.T, r debianRoot) uint64 {
	t.Helper()
	url, err := os.ReadFile(r.path("/var/lib/visitrelay-appliance/nats.url"))
	if err != nil {
		t.Fatalf("read the appliance's NATS URL: %v", err)
	}
	nc, err := nats.Connect(strings.TrimSpace(string(url)))
	if err != nil {
		t.Fatalf("connect to the appliance's NATS server: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, "VISITS")
	if err != nil {
		t.Fatalf("look up the appliance's VISITS stream: %v", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func installFreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestInstallUpgradePurge(t *testing.T) {
	requireInstallTests(t)
	start := time.Now()
	v1Appliance, v1Gateway := buildPackages(t, "0.1.0~test1")
	v2Appliance, v2Gateway := buildPackages(t, "0.1.0~test2")
	root := newDebianRoot(t)
	cluster := pgtest.NewCluster(t)

	// First install, as IT does it: both packages, no systemd running.
	out := root.dpkg(t, "-i", v1Appliance, v1Gateway)
	t.Logf("dpkg -i:\n%s", out)
	checkInstalled(t, root)

	// The database: a database for visitrelay, then the roles and tables
	// with the installed binary's db init, as a DBA would run it.
	ctx := context.Background()
	if err := pgtest.CreateDatabase(ctx, cluster.AdminDSN(), "visitrelay"); err != nil {
		t.Fatal(err)
	}
	adminDSN := cluster.DSN("visitrelay")
	suffix := strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	owner, runtime := "vr_owner_"+suffix, "vr_app_"+suffix
	root.writeFile(t, "/etc/visitrelay/database.password", "runtime password of the test\n")
	mustRun(t, nil, "chroot", root.dir, "visitrelay-appliance", "db", "init", "-apply", "-config", "/etc/visitrelay/appliance.yaml",
		"-admin-url", adminDSN, "-owner", owner, "-runtime", runtime, "-runtime-password-file", "/etc/visitrelay/database.password")
	ownerDSN := strings.Replace(adminDSN, "postgres@", owner+"@", 1)
	runtimeDSN := strings.Replace(adminDSN, "postgres@", runtime+"@", 1)
	for kind, csv := range map[string]string{
		"clients": "id,name,city\n101,Ordination Dr. Huber,Wien\n",
		"devices": "id,name,category\n1,Pulse oximeter PX-200,monitoring\n2,ECG EC-12,diagnostics\n",
		"users":   "id,username,name,password\n23,anna.berger,Anna Berger,cedar-willow-69\n",
	} {
		if err := os.WriteFile(root.path("/tmp/"+kind+".csv"), []byte(csv), 0o644); err != nil {
			t.Fatal(err)
		}
		mustRun(t, []string{"VISITRELAY_DATABASE_URL=" + ownerDSN}, "chroot", root.dir,
			"visitrelay-appliance", "import", kind, "/tmp/"+kind+".csv")
	}

	// IT edits both configs and creates the link's key.
	keygen := mustRun(t, nil, "chroot", root.dir, "visitrelay-appliance", "leaf-keygen", "/etc/visitrelay/leaf.nk")
	// The public key is the first line; a note on stderr follows.
	public, _, _ := strings.Cut(keygen, "\n")
	mustRun(t, nil, "chroot", root.dir, "chown", "root:visitrelay", "/etc/visitrelay/leaf.nk")
	httpsPort, leafPort := installFreePort(t), installFreePort(t)
	gatewayConfig := fmt.Sprintf(`version: 1
listen: "127.0.0.1:%d"
stateDir: /var/lib/visitrelay-gateway
tls:
  mode: self-signed
  names: ["127.0.0.1", "localhost"]
  httpListen: ""
nats:
  leafListen: "127.0.0.1:%d"
  leafTLS:
    mode: http
  sites:
    - domain: onprem
      nkey: %s
`, httpsPort, leafPort, public)
	applianceConfig := fmt.Sprintf(`version: 1
stateDir: /var/lib/visitrelay-appliance
database:
  url: "%s"
  passwordFile: "$CREDENTIALS_DIRECTORY/database-password"
nats:
  gatewayURLs: ["tls://127.0.0.1:%d"]
  leafCAFile: /var/lib/visitrelay-gateway/tls/self-signed.crt
  leafSeedFile: /etc/visitrelay/leaf.nk
status:
  listen: ""
`, runtimeDSN, leafPort)
	root.writeFile(t, "/etc/visitrelay/gateway.yaml", gatewayConfig)
	root.writeFile(t, "/etc/visitrelay/appliance.yaml", applianceConfig)
	// The systemd credential directory that LoadCredential= would make.
	credentials := "/run/credentials/visitrelay-appliance.service"
	if err := os.MkdirAll(root.path(credentials), 0o755); err != nil {
		t.Fatal(err)
	}
	mustRun(t, nil, "cp", root.path("/etc/visitrelay/database.password"), root.path(credentials+"/database-password"))
	mustRun(t, nil, "chroot", root.dir, "chown", "-R", "visitrelay:visitrelay", credentials)
	applianceEnv := "CREDENTIALS_DIRECTORY=" + credentials

	// The appliance pins the gateway's self-signed certificate, which the
	// gateway writes at its first start. Both run as the visitrelay user
	// in this root, so the appliance reads it where it is.
	gateway := root.startService(t, "visitrelay-gateway")
	check := mustRun(t, []string{applianceEnv}, "chroot", root.dir, "visitrelay-appliance", "check-config")
	t.Logf("check-config:\n%s", check)
	for _, want := range []string{"ok   database", "ok   leafnode link"} {
		if !strings.Contains(check, want) {
			t.Errorf("check-config of the installed appliance lacks %q", want)
		}
	}
	appliance := root.startService(t, "visitrelay-appliance", applianceEnv)

	client := newVisitClient(t, fmt.Sprintf("https://127.0.0.1:%d", httpsPort), root.path("/var/lib/visitrelay-gateway/tls/self-signed.crt"))
	client.login(t)
	stored := client.post(t, 5)
	waitInstalledStored(t, adminDSN, stored)

	// Visits that wait on-prem: the database is down, so the appliance
	// holds them in its stream.
	stopCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := cluster.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	waitingOnPrem := client.post(t, 4)
	deadline := time.Now().Add(time.Minute)
	for siteStreamMessages(t, root) < uint64(len(stored)+len(waitingOnPrem)) {
		if time.Now().After(deadline) {
			t.Fatal("visits did not reach the appliance's stream while the database was down")
		}
		time.Sleep(200 * time.Millisecond)
	}
	appliance.stop(t)
	// Visits that wait in the cloud: the appliance is down.
	waitingInCloud := client.post(t, 3)
	gateway.stop(t)

	// Upgrade both packages with visits waiting on both sides.
	editedGateway, _ := os.ReadFile(root.path("/etc/visitrelay/gateway.yaml"))
	editedAppliance, _ := os.ReadFile(root.path("/etc/visitrelay/appliance.yaml"))
	out = root.dpkg(t, "-i", v2Appliance, v2Gateway)
	t.Logf("dpkg -i (upgrade):\n%s", out)
	for path, want := range map[string][]byte{"/etc/visitrelay/gateway.yaml": editedGateway, "/etc/visitrelay/appliance.yaml": editedAppliance} {
		got, err := os.ReadFile(root.path(path))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s changed by the upgrade (err %v)", path, err)
		}
	}
	versions := mustRun(t, nil, "chroot", root.dir, "dpkg-query", "-W", "visitrelay-appliance", "visitrelay-gateway")
	if strings.Count(versions, "0.1.0~test2-1") != 2 {
		t.Errorf("installed versions after the upgrade:\n%s", versions)
	}

	startCtx, cancelStart := context.WithTimeout(ctx, time.Minute)
	defer cancelStart()
	if err := cluster.Start(startCtx); err != nil {
		t.Fatal(err)
	}
	gateway = root.startService(t, "visitrelay-gateway")
	appliance = root.startService(t, "visitrelay-appliance", applianceEnv)
	all := append(append(append([]string{}, stored...), waitingOnPrem...), waitingInCloud...)
	waitInstalledStored(t, adminDSN, all)
	appliance.stop(t)
	gateway.stop(t)

	// Remove keeps the state; purge warns and deletes it.
	out = root.dpkg(t, "-r", "visitrelay-appliance", "visitrelay-gateway")
	if _, err := os.Stat(root.path("/var/lib/visitrelay-appliance/jetstream")); err != nil {
		t.Errorf("remove deleted the appliance's store: %v", err)
	}
	if !strings.Contains(out, "apt purge") {
		t.Errorf("remove printed no note about purge:\n%s", out)
	}
	out = root.dpkg(t, "--purge", "visitrelay-appliance", "visitrelay-gateway")
	t.Logf("dpkg --purge:\n%s", out)
	if !strings.Contains(out, "WARNING: visitrelay-appliance: deleting /var/lib/visitrelay-appliance") {
		t.Errorf("purge printed no warning before deleting the store:\n%s", out)
	}
	for _, gone := range []string{"/var/lib/visitrelay-appliance", "/var/lib/visitrelay-gateway", "/etc/visitrelay/appliance.yaml",
		"/lib/systemd/system/visitrelay-appliance.service", "/etc/systemd/system/multi-user.target.wants/visitrelay-appliance.service"} {
		if _, err := os.Stat(root.path(gone)); err == nil {
			t.Errorf("%s is still there after purge", gone)
		}
	}

	checkScriptsUnderSystemd(t, root, v1Gateway, v2Gateway)
	t.Logf("install, upgrade and purge took %s", time.Since(start).Round(time.Second))
}

// fakeSystemctl logs its arguments and succeeds, standing in for systemd
// in the root.
const fakeSystemctl = `#!/bin/sh
echo "systemctl $*" >> /var/log/systemctl.calls
exit 0
`

// checkScriptsUnderSystemd installs, upgrades, removes and purges the
// gateway package again in a root that looks as if systemd ran, with a
// systemctl that records its calls, and checks what the maintainer scripts
// asked of systemd.
func checkScriptsUnderSystemd(t *testing.T, root debianRoot, v1, v2 string) {
	t.Helper()
	if err := os.MkdirAll(root.path("/run/systemd/system"), 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(root.path("/run/systemd"))
	for _, dir := range []string{"/usr/local/bin", "/usr/local/sbin"} {
		if err := os.WriteFile(root.path(dir+"/systemctl"), []byte(fakeSystemctl), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	calls := func() string {
		data, _ := os.ReadFile(root.path("/var/log/systemctl.calls"))
		_ = os.Remove(root.path("/var/log/systemctl.calls"))
		return string(data)
	}

	steps := []struct {
		name string
		args []string
		want []string
	}{
		{"install", []string{"-i", v1}, []string{"systemctl --system daemon-reload", "systemctl --no-block start visitrelay-gateway.service"}},
		{"upgrade", []string{"-i", v2}, []string{"systemctl --no-block try-restart visitrelay-gateway.service"}},
		{"remove", []string{"-r", "visitrelay-gateway"}, []string{"stop visitrelay-gateway.service"}},
		{"purge", []string{"--purge", "visitrelay-gateway"}, []string{"systemctl --system daemon-reload"}},
	}
	for _, step := range steps {
		root.dpkg(t, step.args...)
		got := calls()
		for _, want := range step.want {
			if !strings.Contains(got, want) {
				t.Errorf("%s under systemd: systemctl calls lack %q:\n%s", step.name, want, got)
			}
		}
		if step.name == "upgrade" && strings.Contains(got, " start ") {
			t.Errorf("upgrade under systemd started the service instead of restarting a running one:\n%s", got)
		}
	}
}

// checkInstalled checks what the first install left in the root.
func checkInstalled(t *testing.T, root debianRoot) {
	t.Helper()
	passwd := mustRun(t, nil, "chroot", root.dir, "getent", "passwd", "visitrelay")
	if !strings.Contains(passwd, "/usr/sbin/nologin") {
		t.Errorf("visitrelay user: %q, want a system user without a shell", passwd)
	}
	for path, want := range map[string]string{
		"/etc/visitrelay":                "750 root visitrelay",
		"/etc/visitrelay/appliance.yaml": "640 root visitrelay",
		"/etc/visitrelay/gateway.yaml":   "640 root visitrelay",
		"/var/lib/visitrelay-appliance":  "750 visitrelay visitrelay",
		"/var/lib/visitrelay-gateway":    "750 visitrelay visitrelay",
	} {
		got := strings.TrimSpace(mustRun(t, nil, "chroot", root.dir, "stat", "-c", "%a %U %G", path))
		if got != want {
			t.Errorf("%s: mode and owner %q, want %q", path, got, want)
		}
	}
	for _, link := range []string{
		"/etc/systemd/system/multi-user.target.wants/visitrelay-appliance.service",
		"/etc/systemd/system/multi-user.target.wants/visitrelay-gateway.service",
	} {
		if _, err := os.Lstat(root.path(link)); err != nil {
			t.Errorf("service not enabled: %v", err)
		}
	}
	if _, err := os.Lstat(root.path("/etc/systemd/system/timers.target.wants/visitrelay-gateway-stop.timer")); err == nil {
		t.Error("the working-hours timer is enabled; it must ship disabled")
	}
	scanner := bufio.NewScanner(strings.NewReader(mustRun(t, nil, "chroot", root.dir, "dpkg-query", "-W", "-f", "${Conffiles}\n", "visitrelay-appliance")))
	found := false
	for scanner.Scan() {
		found = found || strings.Contains(scanner.Text(), "/etc/visitrelay/appliance.yaml")
	}
	if !found {
		t.Error("/etc/visitrelay/appliance.yaml is not a conffile")
	}
}
