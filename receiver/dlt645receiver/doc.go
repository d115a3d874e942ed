// Package dlt645receiver reads DL/T 645-2007 and DL/T 645-1997 electricity
// meters over RS-485 serial buses and TCP transparent serial servers, and
// turns their data identifiers into metrics and each poll into a trace,
// through the shared device model of internal/device. The protocol code is
// our own, in internal/dlt645.
//
//go:generate ../../.tools/mdatagen metadata.yaml
package dlt645receiver
