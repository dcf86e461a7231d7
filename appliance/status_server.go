package appliance

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/visitrelay/visitrelay/internal/health"
	"github.com/visitrelay/visitrelay/internal/metrics"
	"github.com/visitrelay/visitrelay/internal/statuspage"
)

//go:embed status.html
var statusPageFiles embed.FS

func parseStatusPage() (*template.Template, error) {
	return statuspage.Parse(statusPageFiles, "status.html")
}

// listen opens the status listener and serves it in the background.
func (s *statusService) listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on status.listen %s: %w; set status.listen to a free address", addr, err)
	}
	s.listener = ln
	s.server = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	go func() {
		if err := s.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("status listener stopped", "address", addr, "error", err)
		}
	}()
	s.logger.Info("status page listening", "url", "http://"+ln.Addr().String()+"/")
	return nil
}

func (s *statusService) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.servePage)
	mux.HandleFunc("GET /trace", s.servePage)
	mux.HandleFunc("GET /status.json", s.serveJSON)
	mux.HandleFunc("GET /trace.json", s.serveTraceJSON)
	mux.Handle("GET /metrics", metrics.Handler(s.registry))
	mux.HandleFunc("GET /healthz", s.serveHealthz)
	mux.HandleFunc("GET /readyz", s.serveReadyz)
	mux.Handle("GET /assets/", http.StripPrefix("/assets", statuspage.AssetHandler()))
	return mux
}

// statusPageData is the data that status.html renders.
type statusPageData struct {
	Status
	AssetPath  string
	Refresh    int
	TraceQuery string
	Trace      *Trace
	TraceError string
}

// PendingChart draws the visits waiting over the last hour.
func (d statusPageData) PendingChart() template.HTML {
	points := make([]statuspage.Point, 0, len(d.History.Samples))
	for _, p := range d.History.Samples {
		points = append(points, statuspage.Point{At: p.At, Value: float64(p.Pending)})
	}
	return statuspage.Chart("visits waiting", points)
}

// RateChart draws the commit rate over the last hour.
func (d statusPageData) RateChart() template.HTML {
	points := make([]statuspage.Point, 0, len(d.History.Samples))
	for _, p := range d.History.Samples[min(1, len(d.History.Samples)):] {
		points = append(points, statuspage.Point{At: p.At, Value: p.CommittedPerMinute})
	}
	return statuspage.Chart("visits committed per minute", points)
}

// servePage renders the status page, or only its live part when the
// page's script requests it. /trace renders the same page with the trace
// of the visit in the query.
func (s *statusService) servePage(w http.ResponseWriter, r *http.Request) {
	data := statusPageData{Status: s.snapshot(), AssetPath: "/assets", Refresh: statuspage.RefreshSeconds}
	if r.URL.Path == "/trace" {
		data.TraceQuery = strings.TrimSpace(r.URL.Query().Get("visit"))
		tr, err := s.tracer().trace(r.Context(), data.TraceQuery)
		if err != nil {
			data.TraceError = err.Error()
		} else {
			data.Trace = &tr
		}
	}

	name := "status.html"
	if r.Header.Get(statuspage.FragmentHeader) == "live" {
		name = "live"
	}
	setPageHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := s.page.ExecuteTemplate(w, name, data); err != nil {
		s.logger.Error("render status page failed", "path", r.URL.Path, "error", err)
	}
}

func (s *statusService) serveJSON(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.snapshot())
}

func (s *statusService) serveTraceJSON(w http.ResponseWriter, r *http.Request) {
	tr, err := s.tracer().trace(r.Context(), r.URL.Query().Get("visit"))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"code": "invalid_visit_id", "message": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, tr)
}

func (s *statusService) tracer() tracer {
	return tracer{site: s.a.js, cloud: s.cloud, pool: s.a.pool}
}

// serveHealthz responds 200 while the process and its NATS server live.
func (s *statusService) serveHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !s.a.ns.Running() || !s.a.nc.IsConnected() {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "nats server not running")
		return
	}
	fmt.Fprintln(w, "ok")
}

// serveReadyz responds 200 when JetStream is healthy, the store can be
// written and the database responds. A leafnode link outage leaves the
// appliance ready: it keeps committing what it has, and the gateway keeps
// the rest.
func (s *statusService) serveReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()

	var problems []string
	if hs := s.a.ns.Healthz(&server.HealthzOptions{}); hs == nil || hs.StatusCode != http.StatusOK {
		reason := "no answer"
		if hs != nil {
			reason = hs.Error
		}
		problems = append(problems, "JetStream unhealthy: "+reason)
	}
	if err := health.ProbeWritable(filepath.Join(s.a.cfg.StateDir, "jetstream")); err != nil {
		problems = append(problems, "store not writable: "+err.Error())
	}
	if err := s.a.pool.Ping(ctx); err != nil {
		problems = append(problems, "database unreachable: "+err.Error())
	}

	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if len(problems) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready: %s\n", strings.Join(problems, "; "))
		return
	}
	link := "leaf link up"
	if !s.a.ns.LeafConnected() {
		link = "leaf link down (degraded: visits wait in the cloud)"
	}
	fmt.Fprintf(w, "ready: JetStream healthy, store writable, database reachable, %s\n", link)
}

func setPageHeaders(w http.ResponseWriter) {
	for k, v := range statuspage.SecurityHeaders {
		w.Header().Set(k, v)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// StatusAddr returns the address of the status listener, or "" when
// status.listen is empty.
func (a *Appliance) StatusAddr() string {
	if a.status == nil || a.status.listener == nil {
		return ""
	}
	return a.status.listener.Addr().String()
}
