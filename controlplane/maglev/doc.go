// Package maglev builds weighted Maglev lookup tables (Eisenbud et al.,
// "Maglev: A Fast and Reliable Software Network Load Balancer", NSDI 2016):
// backends in, lookup table out, no I/O.
//
// A table has M slots, M prime. The data plane hashes a flow, takes the hash
// modulo M and sends the flow to the backend that owns that slot. Every
// backend with a weight owns a share of the slots proportional to its
// weight, and a change to the backend set moves few slots between the
// backends that stay.
//
// # The table is a contract
//
// Two directors given the same set of (name, weight) pairs compute the same
// table, whatever the order of the input, the machine or the Go version, so
// a flow keeps its backend when the VIP moves from one director to the
// other. Everything below is therefore part of the format: changing any
// step makes two versions of xdplb disagree, and a golden test catches it.
//
// Permutations. Each backend walks the slots in its own order, fixed by its
// name alone. Let h be the 64-bit FNV-1a hash of the name's bytes, and let
// mix be the SplitMix64 output function (x ^= x>>30; x *= 0xbf58476d1ce4e5b9;
// x ^= x>>27; x *= 0x94d049bb133111eb; x ^= x>>31) with
// g = 0x9e3779b97f4a7c15, all arithmetic modulo 2^64. Then
//
//	offset = mix(h + g) mod M
//	skip   = mix(h + 2g) mod (M-1) + 1
//
// and the backend's preference list is offset, offset+skip, offset+2*skip,
// ... modulo M. Since M is prime and 1 <= skip < M, the list holds every
// slot exactly once.
//
// Turns. Backends take turns; on its turn a backend walks its list from
// where it stopped to the first slot without an owner and takes it, so each
// turn fills exactly one slot and the table is full after M turns. In the
// paper every backend takes one turn per round. Here the turns are weighted
// over the whole fill, not only in its first round: backend i with weight
// w_i takes its turns number k = 0, 1, 2, ... at the times
//
//	t(i, k) = (2k + 1) / (2 * w_i)
//
// and turns run in order of time; at equal times the backend with the larger
// weight goes first, and between equal weights the backend whose name sorts
// first (bytewise) goes first. Times are compared exactly, as integer cross
// products. After any number of turns every backend has had its share of
// them to within one half (the Sainte-Laguë apportionment), so a backend
// owns within 1/2 + N*w_i/(2W) slots of M*w_i/W, where W is the sum of the
// weights and N the number of backends with a weight. With equal weights
// the order is the paper's round robin in name order, and every backend
// owns floor(M/N) or ceil(M/N) slots. Multiplying every weight by the same
// factor does not change the table.
//
// Backends with weight 0 take no turns and own no slot; with no weighted
// backend every slot is -1 (the data plane drops the VIP's new flows).
//
// # Disruption
//
// When one backend leaves or joins, its slots change hands, and a few other
// slots move between backends that stay: filling those slots displaces
// later turns, mostly in the last rounds of the fill. With M = 65537 the
// share displaced by one backend of equal weight leaving or joining
// measures about 0.3% at N = 10, 0.6% at N = 100 and N = 1000, and about
// 1% (up to 1.05% seen) for N between 300 and 500; with M = 655373 it stays
// below 0.45% for N up to 1000. A heavier backend displaces more, in
// proportion to its share. Sets of several hundred backends that need less
// churn should use the larger size.
//
// # Cost
//
// A build sorts the names, then walks the preference lists: a handful of
// positions per slot on average, checked against a bitmap of owned slots
// (8 KiB for M = 65537) so the walk stays in cache. With mixed weights the
// turn order comes from a small heap, recorded for one period of the
// weights and replayed. A Builder keeps its buffers, so a daemon that
// rebuilds on every health change allocates nothing once warm. On a
// shared 2-core machine a build of 1000 backends takes about 2 ms of CPU
// at M = 65537 and about 21 ms at M = 655373.
package maglev
