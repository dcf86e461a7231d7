// Package statuspage holds what the gateway's and the appliance's status
// pages share: the stylesheet, the script that refreshes a page in place,
// the verdict banner, the template functions and the inline SVG chart.
// Everything is embedded, so a page needs no network beyond its server.
package statuspage

import (
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"time"
)

//go:embed assets/status.css assets/status.js assets/partials.html
var assets embed.FS

// FragmentHeader is the request header that status.js sends when it
// requests the live part of a page only.
const FragmentHeader = "X-Status-Fragment"

// RefreshSeconds is how often status.js refreshes a page.
const RefreshSeconds = 5

// Parse parses a page template from pages together with the shared
// partials and functions. It is called at start-up, so a broken template
// fails the start and not a request.
func Parse(pages fs.FS, name string) (*template.Template, error) {
	t := template.New(name).Funcs(Funcs())
	t, err := t.ParseFS(assets, "assets/partials.html")
	if err != nil {
		return nil, fmt.Errorf("parse status page partials: %w", err)
	}
	t, err = t.ParseFS(pages, name)
	if err != nil {
		return nil, fmt.Errorf("parse status page %s: %w", name, err)
	}
	return t, nil
}

// AssetHandler serves status.css and status.js; strip the page's asset
// path prefix before it.
func AssetHandler() http.Handler {
	sub, _ := fs.Sub(assets, "assets")
	files := http.FileServer(http.FS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/status.css" && r.URL.Path != "/status.js" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "max-age=300")
		files.ServeHTTP(w, r)
	})
}

// Asset returns the content of status.css or status.js.
func Asset(name string) ([]byte, error) {
	return assets.ReadFile("assets/" + name)
}

// SecurityHeaders are set on every status page response: the page loads
// nothing from elsewhere and runs no inline script.
var SecurityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'",
	"X-Content-Type-Options":  "nosniff",
	"Referrer-Policy":         "no-referrer",
	"Cache-Control":           "no-store",
}

// Now returns the time the page functions measure ages from. Tests may
// replace it.
var Now = time.Now
