package gateway

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"
	texttemplate "text/template"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/compress"
)

// webFiles holds the salesman's page: plain HTML, CSS and JavaScript modules
// with no build step, so what is embedded is what the browser runs.
//
//go:embed web
var webFiles embed.FS

// salesmanPage is loaded when the package initialises. A broken embedded
// asset is a build defect, so the gateway binary stops at start-up instead
// of serving a page that cannot work offline.
var salesmanPage = mustLoadPage(webFiles)

// pageContentTypes lists the file types the page may embed. loadPage rejects
// any other extension, so a stray file cannot be served as
// application/octet-stream.
var pageContentTypes = map[string]string{
	".css":         "text/css; charset=utf-8",
	".html":        "text/html; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".svg":         "image/svg+xml",
	".webmanifest": "application/manifest+json",
}

// pageSecurityPolicy allows the page to load only its own scripts, styles,
// images and API, which also enforces that no asset comes from a CDN.
const pageSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; manifest-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'none'; " +
	"form-action 'self'; frame-ancestors 'none'"

var (
	// pageReference matches the local URLs that index.html loads.
	pageReference = regexp.MustCompile(`(?:src|href)="(/[^"]*)"`)
	// moduleImport matches the relative imports between the page's modules.
	moduleImport = regexp.MustCompile(`(?m)^(?:import|export)\b[^'"]*from\s+'(\.[^']+)'`)
)

// pageAsset is one response body of the page, ready to serve.
type pageAsset struct {
	body        []byte
	contentType string
	etag        string
}

// page is the rendered, checked set of the page's assets, keyed by URL path.
type page struct {
	version string
	assets  map[string]pageAsset
}

func mustLoadPage(files fs.FS) *page {
	web, err := fs.Sub(files, "web")
	if err != nil {
		panic(fmt.Sprintf("open embedded page: %v", err))
	}
	p, err := loadPage(web)
	if err != nil {
		panic(fmt.Sprintf("load embedded page: %v", err))
	}
	return p
}

// loadPage reads the page from files (index.html, sw.js,
// manifest.webmanifest and static/), renders the two templates, and checks
// that every file the page refers to exists. It reports every problem found.
func loadPage(files fs.FS) (*page, error) {
	p := &page{assets: map[string]pageAsset{}}
	sources, errs, err := readPageSources(files)
	if err != nil {
		return nil, err
	}
	p.version = pageVersion(sources)

	for name, body := range sources {
		if !strings.HasPrefix(name, "static/") && name != "manifest.webmanifest" {
			continue
		}
		p.add("/"+name, pageContentTypes[path.Ext(name)], body)
	}
	if !json.Valid(sources["manifest.webmanifest"]) {
		errs = append(errs, errors.New("manifest.webmanifest: invalid JSON"))
	}

	index, err := renderIndex(sources["index.html"], p.version)
	if err != nil {
		errs = append(errs, err)
	}
	p.add("/", pageContentTypes[".html"], index)
	worker, err := renderWorker(sources["sw.js"], p.version, p.shell())
	if err != nil {
		errs = append(errs, err)
	}
	p.add("/sw.js", pageContentTypes[".js"], worker)

	errs = append(errs, p.checkReferences(index)...)
	return p, errors.Join(errs...)
}

// readPageSources returns every file of the page by its path. It lists a
// missing or empty file and a file type the page does not serve as
// problems, and returns an error only when the files cannot be read.
func readPageSources(files fs.FS) (sources map[string][]byte, problems []error, err error) {
	sources = map[string][]byte{}
	var errs []error
	err = fs.WalkDir(files, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if _, ok := pageContentTypes[path.Ext(name)]; !ok {
			errs = append(errs, fmt.Errorf("%s: unknown file type %q; the page serves %s", name, path.Ext(name), knownExtensions()))
			return nil
		}
		body, err := fs.ReadFile(files, name)
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		if len(body) == 0 {
			errs = append(errs, fmt.Errorf("%s: empty file", name))
		}
		sources[name] = body
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read page files: %w", err)
	}
	for _, name := range []string{"index.html", "sw.js", "manifest.webmanifest"} {
		if _, ok := sources[name]; !ok {
			errs = append(errs, fmt.Errorf("%s: missing", name))
		}
	}
	return sources, errs, nil
}

func knownExtensions() string {
	exts := make([]string, 0, len(pageContentTypes))
	for ext := range pageContentTypes {
		exts = append(exts, ext)
	}
	slices.Sort(exts)
	return strings.Join(exts, ", ")
}

// pageVersion hashes every source file, so that any change gives the page a
// new version, the service worker a new cache, and the phone the new files.
func pageVersion(sources map[string][]byte) string {
	names := make([]string, 0, len(sources))
	for name := range sources {
		names = append(names, name)
	}
	slices.Sort(names)
	h := sha256.New()
	for _, name := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(sources[name]))
		h.Write(sources[name])
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

func renderIndex(source []byte, version string) ([]byte, error) {
	tmpl, err := template.New("index.html").Option("missingkey=error").Parse(string(source))
	if err != nil {
		return nil, fmt.Errorf("parse index.html: %w", err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, map[string]string{"Version": version}); err != nil {
		return nil, fmt.Errorf("render index.html: %w", err)
	}
	return buf.Bytes(), nil
}

// renderWorker renders the service worker with the version and the list of
// URLs it caches. text/template is right here: the values are JSON, written
// into JavaScript, not HTML.
func renderWorker(source []byte, version string, shell []string) ([]byte, error) {
	tmpl, err := texttemplate.New("sw.js").Option("missingkey=error").Parse(string(source))
	if err != nil {
		return nil, fmt.Errorf("parse sw.js: %w", err)
	}
	versionJSON, _ := json.Marshal(version)
	shellJSON, _ := json.Marshal(shell)
	var buf bytes.Buffer
	err = tmpl.Execute(&buf, map[string]string{
		"Version":     version,
		"VersionJSON": string(versionJSON),
		"ShellJSON":   string(shellJSON),
	})
	if err != nil {
		return nil, fmt.Errorf("render sw.js: %w", err)
	}
	return buf.Bytes(), nil
}

func (p *page) add(urlPath, contentType string, body []byte) {
	sum := sha256.Sum256(body)
	p.assets[urlPath] = pageAsset{body: body, contentType: contentType, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
}

// shell returns the URLs the service worker caches: the page, the manifest
// and every static file. It is called before sw.js itself is added.
func (p *page) shell() []string {
	urls := make([]string, 0, len(p.assets))
	for u := range p.assets {
		urls = append(urls, u)
	}
	slices.Sort(urls)
	return urls
}

// checkReferences reports each URL in index.html and each module import
// that names a file the page does not have.
func (p *page) checkReferences(index []byte) []error {
	var errs []error
	for _, m := range pageReference.FindAllSubmatch(index, -1) {
		ref := string(m[1])
		if _, ok := p.assets[ref]; !ok {
			errs = append(errs, fmt.Errorf("index.html: refers to %s, which the page does not have", ref))
		}
	}
	for urlPath, asset := range p.assets {
		if path.Ext(urlPath) != ".js" || urlPath == "/sw.js" {
			continue
		}
		for _, m := range moduleImport.FindAllSubmatch(asset.body, -1) {
			target := path.Join(path.Dir(urlPath), string(m[1]))
			if _, ok := p.assets[target]; !ok {
				errs = append(errs, fmt.Errorf("%s: imports %s, which the page does not have", strings.TrimPrefix(urlPath, "/"), m[1]))
			}
		}
	}
	return errs
}

// mount registers the page's routes. Responses are gzip or brotli
// compressed when the browser accepts it. Every asset is revalidated with
// its ETag on each load (no-cache), because the service worker, not the
// HTTP cache, serves the page offline, and it must get new files at once.
func (p *page) mount(app *fiber.App) {
	zip := compress.New(compress.Config{Level: compress.LevelBestCompression})
	app.Get("/", zip, p.serve("/"))
	app.Get("/sw.js", zip, p.serve("/sw.js"))
	app.Get("/manifest.webmanifest", zip, p.serve("/manifest.webmanifest"))
	app.Get("/static/*", zip, func(c *fiber.Ctx) error {
		return p.send(c, "/static/"+c.Params("*"))
	})
}

func (p *page) serve(urlPath string) fiber.Handler {
	return func(c *fiber.Ctx) error { return p.send(c, urlPath) }
}

func (p *page) send(c *fiber.Ctx, urlPath string) error {
	asset, ok := p.assets[urlPath]
	if !ok {
		return fiber.ErrNotFound
	}
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set(fiber.HeaderETag, asset.etag)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	if urlPath == "/" {
		c.Set(fiber.HeaderContentSecurityPolicy, pageSecurityPolicy)
		c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	}
	if etagMatches(c.Get(fiber.HeaderIfNoneMatch), asset.etag) {
		return c.SendStatus(fiber.StatusNotModified)
	}
	c.Set(fiber.HeaderContentType, asset.contentType)
	return c.Send(asset.body)
}

// etagMatches reports whether an If-None-Match header names etag, either
// alone or in a comma-separated list.
func etagMatches(header, etag string) bool {
	for candidate := range strings.SplitSeq(header, ",") {
		if strings.TrimSpace(candidate) == etag {
			return true
		}
	}
	return false
}
