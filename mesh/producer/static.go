package producer

import (
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
)

// handleStatic serves the built dashboard from Config.WebDir: a file when
// it exists, else index.html for paths without an extension (client-side
// routes of the single-page app), else 404.
func (p *Producer) handleStatic(w http.ResponseWriter, r *http.Request) {
	fsys := os.DirFS(p.cfg.WebDir)
	if _, err := fs.Stat(fsys, "index.html"); err != nil {
		writeError(w, errNotFound("the dashboard is not built in %s (run `go tool -modfile=tools.mod task web`); the API is under /api/v1", p.cfg.WebDir))
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if name == "" {
		name = "index.html"
	}
	if st, err := fs.Stat(fsys, name); err == nil && !st.IsDir() {
		if strings.HasPrefix(name, "assets/") {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable") // hashed by Vite
		}
		http.ServeFileFS(w, r, fsys, name)
		return
	}
	if path.Ext(name) != "" {
		writeError(w, errNotFound("no file %s", truncate(r.URL.Path, 200)))
		return
	}
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeFileFS(w, r, fsys, "index.html")
}
