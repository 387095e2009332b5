package vrrp

// BestOf lets the namespace tests (package vrrp_test) share bestOf.
var BestOf = bestOf
