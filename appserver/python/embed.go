// Package python embeds tandem's Python worker adapter, tandem_worker.py
// (the WSGI worker and the preload zygote, per docs/protocol.md), so the
// tandem binary needs no pip install. The app server writes it to its
// private runtime directory at start and runs it with the app's Python.
package python

import _ "embed"

// Script is the source of tandem_worker.py.
//
//go:embed tandem_worker.py
var Script []byte

// FileName is the name the script is written under in the runtime dir.
const FileName = "tandem_worker.py"
