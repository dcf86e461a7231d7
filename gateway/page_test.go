package gateway

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/gofiber/fiber/v2"
)

// maxFirstLoad is the budget for the HTML, CSS and JavaScript a phone
// downloads on its first visit, gzip-compressed.
const maxFirstLoad = 150 << 10

func TestEmbeddedPageLoads(t *testing.T) {
	web, err := fs.Sub(webFiles, "web")
	if err != nil {
		t.Fatalf("open embedded page: %v", err)
	}
	p, err := loadPage(web)
	if err != nil {
		t.Fatalf("load embedded page: %v", err)
	}
	if len(p.version) != 12 {
		t.Errorf("version %q, want 12 hex digits", p.version)
	}
	for _, urlPath := range []string{"/", "/sw.js", "/manifest.webmanifest", "/static/app.css", "/static/js/app.js"} {
		if _, ok := p.assets[urlPath]; !ok {
			t.Errorf("page has no %s", urlPath)
		}
	}
	worker := string(p.assets["/sw.js"].body)
	if !strings.Contains(worker, `"/static/js/sender.js"`) {
		t.Errorf("sw.js does not cache /static/js/sender.js:\n%s", worker)
	}
	if strings.Contains(worker, `"/sw.js"`) {
		t.Errorf("sw.js caches itself")
	}
	if !strings.Contains(string(p.assets["/"].body), p.version) {
		t.Errorf("index.html does not show version %s", p.version)
	}
}

func TestPageFirstLoadSize(t *testing.T) {
	total := 0
	for urlPath, asset := range salesmanPage.assets {
		if urlPath != "/" && !strings.HasSuffix(urlPath, ".js") && !strings.HasSuffix(urlPath, ".css") {
			continue
		}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Write(asset.body)
		zw.Close()
		total += buf.Len()
	}
	t.Logf("first load: %d bytes of HTML, CSS and JavaScript after gzip", total)
	if total > maxFirstLoad {
		t.Errorf("first load is %d bytes gzip, over the budget of %d", total, maxFirstLoad)
	}
}

func TestLoadPageRejectsBrokenAssets(t *testing.T) {
	good := func() fstest.MapFS {
		return fstest.MapFS{
			"index.html":           {Data: []byte(`<link href="/static/app.css"><script src="/static/js/app.js"></script>{{.Version}}`)},
			"sw.js":                {Data: []byte(`const SHELL = {{.ShellJSON}};`)},
			"manifest.webmanifest": {Data: []byte(`{"name": "x"}`)},
			"static/app.css":       {Data: []byte(`body {}`)},
			"static/js/app.js":     {Data: []byte("import { x } from './x.js';\n")},
			"static/js/x.js":       {Data: []byte("export const x = 1;\n")},
		}
	}
	if _, err := loadPage(good()); err != nil {
		t.Fatalf("load a good page: %v", err)
	}

	tests := []struct {
		name   string
		change func(fstest.MapFS)
		want   string
	}{
		{"broken template", func(f fstest.MapFS) { f["index.html"] = &fstest.MapFile{Data: []byte(`{{.Version`)} }, "parse index.html"},
		{"unknown template field", func(f fstest.MapFS) { f["index.html"] = &fstest.MapFile{Data: []byte(`{{.Nope}}`)} }, "render index.html"},
		{"missing stylesheet", func(f fstest.MapFS) { delete(f, "static/app.css") }, "refers to /static/app.css"},
		{"missing module", func(f fstest.MapFS) { delete(f, "static/js/x.js") }, "imports ./x.js"},
		{"unknown file type", func(f fstest.MapFS) { f["static/notes.txt"] = &fstest.MapFile{Data: []byte("x")} }, `unknown file type ".txt"`},
		{"empty file", func(f fstest.MapFS) { f["static/js/x.js"] = &fstest.MapFile{} }, "empty file"},
		{"invalid manifest", func(f fstest.MapFS) { f["manifest.webmanifest"] = &fstest.MapFile{Data: []byte(`{`)} }, "invalid JSON"},
		{"no service worker", func(f fstest.MapFS) { delete(f, "sw.js") }, "sw.js: missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := good()
			tt.change(files)
			_, err := loadPage(files)
			if err == nil {
				t.Fatalf("loadPage succeeded, want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestPageServing(t *testing.T) {
	app := fiber.New()
	salesmanPage.mount(app)
	index := salesmanPage.assets["/"]

	tests := []struct {
		name           string
		path           string
		header         map[string]string
		status         int
		contentType    string
		encoding       string
		wantHeaderName string
	}{
		{"page", "/", nil, 200, "text/html; charset=utf-8", "", "Content-Security-Policy"},
		{"page gzip", "/", map[string]string{"Accept-Encoding": "gzip"}, 200, "text/html; charset=utf-8", "gzip", "ETag"},
		{"page revalidated", "/", map[string]string{"If-None-Match": index.etag}, 304, "", "", "ETag"},
		{"module", "/static/js/app.js", nil, 200, "text/javascript; charset=utf-8", "", "ETag"},
		{"stylesheet gzip", "/static/app.css", map[string]string{"Accept-Encoding": "gzip"}, 200, "text/css; charset=utf-8", "gzip", "ETag"},
		{"service worker", "/sw.js", nil, 200, "text/javascript; charset=utf-8", "", "ETag"},
		{"manifest", "/manifest.webmanifest", nil, 200, "application/manifest+json", "", "ETag"},
		{"unknown static file", "/static/js/nope.js", nil, 404, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", tt.path, nil)
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := app.Test(req)
			if err != nil {
				t.Fatalf("GET %s: %v", tt.path, err)
			}
			defer resp.Body.Close()
			io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("GET %s: status %d, want %d", tt.path, resp.StatusCode, tt.status)
			}
			if tt.contentType != "" && resp.Header.Get("Content-Type") != tt.contentType {
				t.Errorf("Content-Type %q, want %q", resp.Header.Get("Content-Type"), tt.contentType)
			}
			if got := resp.Header.Get("Content-Encoding"); got != tt.encoding {
				t.Errorf("Content-Encoding %q, want %q", got, tt.encoding)
			}
			if tt.status < 400 && resp.Header.Get("Cache-Control") != "no-cache" {
				t.Errorf("Cache-Control %q, want no-cache", resp.Header.Get("Cache-Control"))
			}
			if tt.wantHeaderName != "" && resp.Header.Get(tt.wantHeaderName) == "" {
				t.Errorf("no %s header", tt.wantHeaderName)
			}
		})
	}
}
