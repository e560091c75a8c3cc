package conf

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
)

// validate checks what no single directive can: relations between sites,
// locations and the file system. It runs on the built model before
// defaults and inheritance, so every error points at what was written.
func validate(cfg *Config, e env, errs *errList) {
	refs := refs{
		apps:      validateApps(cfg.Apps, e, errs),
		upstreams: validateUpstreams(cfg.Upstreams, e, errs),
	}
	names := map[string]Pos{}    // listen addr + "\x00" + site name -> first use
	defaults := map[string]Pos{} // listen addr -> first default listen
	uses := map[string]addrUse{} // listen addr -> first site on it
	validateCacheStore(cfg.Cache, errs)
	validateMainACME(cfg, e, errs)
	for _, s := range cfg.Sites {
		validateListen(s, names, defaults, errs)
		validateAddrTLS(s, uses, errs)
		validateSite(s, refs, e, errs)
		validateSiteTLS(s, e, errs)
		validateSiteACME(s, e, errs)
	}
}

// refs are the names that `app NAME;` and `proxy NAME;` may use.
type refs struct {
	apps, upstreams map[string]bool
}

// validateApps checks each app block and that names are unique; it
// returns the app names for `app NAME;` lookups.
func validateApps(apps []*App, e env, errs *errList) map[string]bool {
	first := map[string]Pos{}
	for _, a := range apps {
		if at, dup := first[a.Name]; dup {
			errs.add(a.pos.name, "app %q is already defined at %s", a.Name, at)
		} else {
			first[a.Name] = a.pos.name
		}
		validateApp(a, e, errs)
	}
	names := map[string]bool{}
	for name := range first {
		names[name] = true
	}
	return names
}

// validateUpstreams checks that upstream names are unique and tls_ca
// files are usable; it returns the names for `proxy NAME;` lookups.
func validateUpstreams(ups []*Upstream, e env, errs *errList) map[string]bool {
	first := map[string]Pos{}
	for _, u := range ups {
		if at, dup := first[u.Name]; dup {
			errs.add(u.pos.name, "upstream %q is already defined at %s", u.Name, at)
		} else {
			first[u.Name] = u.pos.name
		}
		if u.TLSCA != "" {
			checkCA(e, u.pos.tlsCA, "tls_ca", u.TLSCA, errs)
		}
	}
	names := map[string]bool{}
	for name := range first {
		names[name] = true
	}
	return names
}

// checkCA reports a CA file (tls_ca, tls_client_ca) that cannot be read
// or holds no PEM certificate (a DER file or a key given by mistake),
// even for upstreams without https servers, where tls_ca is ignored: a
// broken file is a mistake either way.
func checkCA(e env, pos Pos, directive, path string, errs *errList) {
	what := fmt.Sprintf("%s %q", directive, path)
	data, err := e.readFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		errs.errs = append(errs.errs, &Error{Pos: pos, Msg: what + ": file does not exist", Err: err})
	case err != nil:
		errs.wrap(pos, what, pathErrCause(err))
	case !x509.NewCertPool().AppendCertsFromPEM(data):
		errs.add(pos, "%s: no PEM certificate in the file", what)
	}
}

// checkUpstreamRef reports `proxy NAME;` naming no upstream block, with
// the likeliest fix.
func checkUpstreamRef(p *Proxy, refs refs, errs *errList) {
	switch s := closest(p.name, slices.Sorted(maps.Keys(refs.upstreams))); {
	case refs.apps[p.name]:
		errs.add(p.namePos, "no upstream named %q; %q is an app: use \"app %s;\"", p.name, p.name, p.name)
	case s != "":
		errs.add(p.namePos, "no upstream named %q; did you mean %q?", p.name, s)
	default:
		errs.add(p.namePos, "no upstream named %q; define it at top level with upstream %s { server URL; }", p.name, p.name)
	}
}

// validateApp checks an app's directories, its python or command, and that
// min_workers <= workers <= max_workers for the bounds that were set.
func validateApp(a *App, e env, errs *errList) {
	if a.Chdir != "" {
		checkDir(e, a.pos.chdir, "chdir", a.Chdir, errs)
	}
	if filepath.IsAbs(a.Python) {
		if err := e.checkExec(a.Python); err != nil {
			errs.wrap(a.pos.python, fmt.Sprintf("python %q", a.Python), err)
		}
	}
	// A command by absolute path must be there now; a bare name is looked
	// up in PATH when its workers start, where the app's env may change it.
	if len(a.Command) > 0 && filepath.IsAbs(a.Command[0]) {
		if err := e.checkExec(a.Command[0]); err != nil {
			errs.wrap(a.pos.command, fmt.Sprintf("command %q", a.Command[0]), err)
		}
	}
	p := a.pos
	switch {
	case a.Workers > 0:
		if a.MinWorkers > a.Workers {
			errs.add(p.minWorkers, "min_workers %d is more than workers %d (at %s)", a.MinWorkers, a.Workers, p.workers)
		}
		if a.MaxWorkers > 0 && a.MaxWorkers < a.Workers {
			errs.add(p.maxWorkers, "max_workers %d is less than workers %d (at %s)", a.MaxWorkers, a.Workers, p.workers)
		}
	case a.MinWorkers > 0 && a.MaxWorkers > 0 && a.MaxWorkers < a.MinWorkers:
		errs.add(p.maxWorkers, "max_workers %d is less than min_workers %d (at %s)", a.MaxWorkers, a.MinWorkers, p.minWorkers)
	}
}

// siteLabel names a site in messages by its first name.
func siteLabel(s *Site) string {
	if len(s.Names) == 0 {
		return "site"
	}
	return fmt.Sprintf("site %q", s.Names[0])
}

// validateListen checks listen addresses within one site and against the
// sites before it: a name may answer on an address only once (the second
// site would never be chosen), and an address has one default site.
func validateListen(s *Site, names, defaults map[string]Pos, errs *errList) {
	if len(s.Listen) == 0 {
		if s.listenWritten {
			return // the bad listen is already reported
		}
		errs.add(s.Pos, "%s has no listen directive; add e.g. \"listen 80;\"", siteLabel(s))
		return
	}
	own := map[string]Pos{}
	for _, l := range s.Listen {
		if first, dup := own[l.Addr]; dup {
			errs.add(l.Pos, "listen address %s is already listed in this site at %s", l.Addr, first)
			continue
		}
		own[l.Addr] = l.Pos
		if l.Default {
			if first, dup := defaults[l.Addr]; dup {
				errs.add(l.Pos, "a default site for %s is already set at %s", l.Addr, first)
			} else {
				defaults[l.Addr] = l.Pos
			}
		}
		for i, name := range s.Names {
			key := l.Addr + "\x00" + name
			if first, dup := names[key]; dup {
				errs.add(s.namePos[i], "site name %q on %s is already used at %s", name, l.Addr, first)
				continue
			}
			names[key] = s.namePos[i]
		}
	}
}

// validateSite checks a site's route and its locations.
func validateSite(s *Site, refs refs, e env, errs *errList) {
	named := map[string]bool{}
	for _, l := range s.Locations {
		if l.Kind == Named {
			named[l.Path] = true
		}
	}
	validateRoute(&s.Route, s.Route.pos.dirWritten, named, refs, e, errs)
	seen := map[string]Pos{}
	for _, l := range s.Locations {
		kind := l.Kind
		if kind == PrefixNoRegex {
			kind = Prefix // `^~ /a` and `/a` are the same prefix, as in nginx
		}
		key := fmt.Sprintf("%d %t %s", kind, l.IgnoreCase, l.Path)
		if first, dup := seen[key]; dup {
			errs.add(l.Pos, "location %s is already defined in this site at %s", locationLabel(l), first)
		} else {
			seen[key] = l.Pos
		}
		if l.Route.Root != "" && l.Route.Alias != "" {
			errs.add(l.Route.pos.alias, "a location cannot have both root (at %s) and alias", l.Route.pos.root)
		}
		if l.Kind == Regex && l.Route.Alias != "" {
			// nginx's alias in a regex location needs captures ($1),
			// which tandem does not substitute.
			errs.add(l.Route.pos.alias, "alias is not supported in a regex location (there is no prefix to replace); use root")
		}
		hasDir := l.Route.pos.dirWritten || s.Route.pos.dirWritten
		validateRoute(&l.Route, hasDir, named, refs, e, errs)
	}
	validateAuth(s, errs)
	validateCGIOpts(s, errs)
	validateCompressOpts(s, errs)
	validateCacheOpts(s, errs)
}

func locationLabel(l *Location) string {
	switch {
	case l.Kind == Exact:
		return fmt.Sprintf("\"= %s\"", l.Path)
	case l.Kind == Regex && l.IgnoreCase:
		return fmt.Sprintf("\"~* %s\"", l.Path)
	case l.Kind == Regex:
		return fmt.Sprintf("\"~ %s\"", l.Path)
	}
	return fmt.Sprintf("%q", l.Path)
}

// validateRoute checks one block's own directives: its directories exist,
// file handlers have somewhere to read from, and @name targets, apps and
// upstreams exist. hasDir says whether the block or its site names a
// directory (root or alias), valid or not.
func validateRoute(r *Route, hasDir bool, named map[string]bool, refs refs, e env, errs *errList) {
	if r.Root != "" {
		checkDir(e, r.pos.root, "root", r.Root, errs)
	}
	if r.Alias != "" {
		checkDir(e, r.pos.alias, "alias", r.Alias, errs)
	}
	if !hasDir {
		if r.Static {
			errs.add(r.pos.static, "\"static\" needs a root or alias to serve files from")
		}
		if len(r.TryFiles) > 0 {
			errs.add(r.TryFilesPos, "\"try_files\" needs a root or alias to look for files in")
		}
		if r.CGI != nil {
			errs.add(r.CGI.Pos, "\"cgi\" needs a root or alias to find scripts in")
		}
	}
	if len(r.TryFiles) > 0 {
		fb := r.TryFiles[len(r.TryFiles)-1]
		if fb[0] == '@' && !named[fb] {
			errs.add(r.pos.tryFallback, "try_files fallback %q is not a named location in this site", fb)
		}
	}
	if r.App != "" && !refs.apps[r.App] {
		if s := closest(r.App, slices.Sorted(maps.Keys(refs.apps))); s != "" {
			errs.add(r.pos.app, "no app named %q; did you mean %q?", r.App, s)
		} else {
			errs.add(r.pos.app, "no app named %q; define it at top level with app %s { ... }", r.App, r.App)
		}
	}
	if p := r.Proxy; p != nil && p.name != "" && !refs.upstreams[p.name] {
		checkUpstreamRef(p, refs, errs)
	}
	reported := map[Pos]bool{} // one error_page line may list many codes
	for _, code := range slices.Sorted(maps.Keys(r.ErrorPages)) {
		t, at := r.ErrorPages[code], r.pos.errorPages[code].target
		if t[0] == '@' && !named[t] && !reported[at] {
			errs.add(at, "error_page target %q is not a named location in this site", t)
			reported[at] = true
		}
	}
}

// checkDir reports a root or alias that is not a readable directory.
func checkDir(e env, pos Pos, what, dir string, errs *errList) {
	if err := e.checkDir(dir); err != nil {
		errs.wrap(pos, fmt.Sprintf("%s %q", what, dir), err)
	}
}

// validateAuth reports an auth_basic that has no user file, in its block
// or inherited from the site, since it could let nobody in.
func validateAuth(s *Site, errs *errList) {
	check := func(r *Route, siteHasFile bool) {
		if r.AuthRealm != nil && *r.AuthRealm != "" && !r.pos.authUsersWritten && !siteHasFile {
			errs.add(r.pos.authRealm, "auth_basic needs auth_basic_user_file, in this block or its site")
		}
	}
	check(&s.Route, false)
	for _, l := range s.Locations {
		check(&l.Route, s.Route.pos.authUsersWritten)
	}
}
