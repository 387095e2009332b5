// Package healthtest provides fakes for testing code built on package
// health: a Clock that tests advance by hand and a Checker that replays a
// script of results.
package healthtest
