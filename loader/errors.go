package loader

import "errors"

// Sentinel errors, for errors.Is. The errors returned wrap them with the
// operation and, where a user can act on it, what to do.
var (
	// ErrNotAttached means no balancer or decap program is pinned for the
	// interface under the pin root.
	ErrNotAttached = errors.New("xdplb is not attached")
	// ErrVIPNotFound means the VIP is not in the vips map.
	ErrVIPNotFound = errors.New("VIP does not exist")
	// ErrVIPExists means AddVIP found the VIP already configured.
	ErrVIPExists = errors.New("VIP already exists")
	// ErrBackendNotFound means the backend slot is unused.
	ErrBackendNotFound = errors.New("backend does not exist")
	// ErrTableFull means every VIP index or backend id is in use.
	ErrTableFull = errors.New("table full")
	// ErrNotRoot means the process lacks the privileges to load or pin
	// BPF objects.
	ErrNotRoot = errors.New("not running as root")
	// ErrNoBTF means the kernel exposes no BTF (/sys/kernel/btf/vmlinux).
	ErrNoBTF = errors.New("kernel BTF not available")
	// ErrNoBPFFS means the pin root is not on a BPF file system.
	ErrNoBPFFS = errors.New("no BPF file system")
	// ErrUnknownInterface means no network interface has the given name.
	ErrUnknownInterface = errors.New("unknown interface")
	// ErrIncompatiblePins means the pinned maps were created with other
	// options or by an xdplb version with another map layout.
	ErrIncompatiblePins = errors.New("pinned maps are incompatible")
	// ErrInvalidOptions means Options failed validation.
	ErrInvalidOptions = errors.New("invalid options")
)
