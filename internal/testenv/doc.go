// Package testenv decides whether privileged tests may run here: they skip
// when the process is not root and fail instead under XDPLB_REQUIRE_PRIVILEGED=1.
package testenv
