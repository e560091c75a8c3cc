package cache

import (
	"net/http"
	"net/url"
	"strings"
)

// serveUnsafe passes an unsafe request (POST, PUT, DELETE, PATCH...) on
// and, when the response is not an error, invalidates what it may have
// changed (RFC 9111 §4.4): the target URI and the same-host Location and
// Content-Location. It invalidates as the response head is written, so a
// client that sees the response never reads the old version, and again
// after the handler returns, in case a concurrent fetch stored it back.
func (h *handler) serveUnsafe(w http.ResponseWriter, r *http.Request) {
	h.c.stats.bypass.Add(1)
	h.c.setStatus(w.Header(), xBypass, cacheStatus{fwd: fwdMethod})
	iw := &invalidateWriter{ResponseWriter: w, h: h, r: r}
	h.next.ServeHTTP(iw, r)
	if iw.ok {
		h.c.invalidate(r, iw.locations)
	}
}

// invalidateWriter watches an unsafe request's response status.
type invalidateWriter struct {
	http.ResponseWriter
	h           *handler
	r           *http.Request
	wroteHeader bool
	ok          bool     // non-error status
	locations   []string // Location and Content-Location values
}

func (iw *invalidateWriter) WriteHeader(code int) {
	if !iw.wroteHeader && code >= 200 {
		iw.wroteHeader = true
		if code < 400 {
			iw.ok = true
			hd := iw.ResponseWriter.Header()
			iw.locations = append(iw.locations, hd.Values("Location")...)
			iw.locations = append(iw.locations, hd.Values("Content-Location")...)
			iw.h.c.invalidate(iw.r, iw.locations)
		}
	}
	iw.ResponseWriter.WriteHeader(code)
}

func (iw *invalidateWriter) Write(p []byte) (int, error) {
	if !iw.wroteHeader {
		iw.WriteHeader(http.StatusOK)
	}
	return iw.ResponseWriter.Write(p)
}

func (iw *invalidateWriter) Flush() {
	if fl, ok := iw.ResponseWriter.(http.Flusher); ok {
		if !iw.wroteHeader {
			iw.WriteHeader(http.StatusOK)
		}
		fl.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (iw *invalidateWriter) Unwrap() http.ResponseWriter { return iw.ResponseWriter }

// invalidate removes the stored responses for r's target URI and for
// each location that resolves to the same host.
func (c *Cache) invalidate(r *http.Request, locations []string) {
	host := r.Host
	n := c.removeURL(urlKey(host, r.URL.RequestURI()), false)
	for _, loc := range locations {
		u, err := r.URL.Parse(loc)
		if err != nil {
			continue
		}
		if u.Host != "" && !strings.EqualFold(hostOnly(u.Host), hostOnly(host)) {
			continue // another host's responses are not this request's to drop
		}
		n += c.removeURL(urlKey(host, u.RequestURI()), false)
	}
	c.stats.purged.Add(uint64(n))
}

// removeURL drops every entry (all variants and schemes) stored for a
// urlKey, or for every urlKey with that prefix.
func (c *Cache) removeURL(key string, prefix bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	if !prefix {
		for e := range c.urls[key] {
			c.removeLocked(e)
			n++
		}
		return n
	}
	for k, set := range c.urls {
		if strings.HasPrefix(k, key) {
			for e := range set {
				c.removeLocked(e)
				n++
			}
		}
	}
	return n
}

// PurgeURL removes every stored response for host and uri: all variants,
// both schemes, whatever the key template. host may carry a port (it is
// ignored); uri is a path with an optional query, and a trailing "*"
// makes it a prefix ("/blog/*"). It returns the number of entries removed.
func (c *Cache) PurgeURL(host, uri string) int {
	prefix := strings.HasSuffix(uri, "*")
	uri = strings.TrimSuffix(uri, "*")
	if !prefix {
		uri = normalizeURI(uri)
	} else if !strings.HasPrefix(uri, "/") {
		uri = "/" + uri
	}
	n := c.removeURL(urlKey(host, uri), prefix)
	c.stats.purged.Add(uint64(n))
	return n
}

// PurgeTag removes every stored response whose Surrogate-Key lists tag.
func (c *Cache) PurgeTag(tag string) int {
	c.mu.Lock()
	n := 0
	for e := range c.tags[tag] {
		c.removeLocked(e)
		n++
	}
	c.mu.Unlock()
	c.stats.purged.Add(uint64(n))
	return n
}

// PurgeAll removes every stored response.
func (c *Cache) PurgeAll() int {
	c.mu.Lock()
	n := c.purgeAllLocked()
	c.mu.Unlock()
	c.stats.purged.Add(uint64(n))
	return n
}

// normalizeURI puts a request URI in the form the index uses.
func normalizeURI(uri string) string {
	if uri == "" {
		return "/"
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		return uri
	}
	return u.RequestURI()
}

var _ http.Flusher = (*invalidateWriter)(nil)
