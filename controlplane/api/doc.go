// Package api is the xdplb daemon's local API: JSON over HTTP on a unix
// socket that only root may use, with a server that calls into the daemon
// and a Go client for the CLI.
//
// The socket is created with mode 0600 (bound under a temporary name,
// restricted, then renamed into place, so it is never reachable with wider
// permissions), and every connection's peer credentials are checked: a
// process whose user differs from the daemon's gets 403 even if the mode is
// loosened.
//
// Endpoints, all under /v1, mirror the CLI:
//
//	GET  /v1/status           Status: services, backends, health, flow table, BPF memory
//	POST /v1/reload           re-read the configuration file and apply the difference
//	POST /v1/backend/drain    BackendRef: drain a backend (persisted)
//	POST /v1/backend/undrain  BackendRef: undo a drain (persisted)
//	POST /v1/vip/add          VIPSpec: add a VIP as a runtime change
//	POST /v1/vip/del          VIPRef: delete a VIP
//	POST /v1/backend/add      BackendSpec: add a backend to a VIP
//	POST /v1/backend/del      BackendRef: delete a backend
//	POST /v1/backend/set      BackendChange: change a backend's weight, state or MAC
//
// Errors are a JSON object {"error": message, "kind": kind} with an HTTP
// status that matches the kind; the client turns them back into an *Error
// that errors.Is matches against ErrNotFound, ErrExists, ErrInvalid and
// ErrConfig. The daemon's implementation of Daemon reports those kinds by
// wrapping the same sentinels.
package api
