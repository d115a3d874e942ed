// Command opcuasim is an OPC UA server for demos and tests: a small plant (temperatures, pressures, an
// energy counter, a running flag, an array, a string, a Bad and an Uncertain node) whose values change
// over time. See internal/sim/opcua for the address space.
//
//	opcuasim -listen 127.0.0.1:4840 -security None,Basic256Sha256:SignAndEncrypt -cert server.pem -key server.key
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/opcua"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "opcuasim:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("opcuasim", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:4840", "host:port to listen on (the endpoint is opc.tcp://host:port)")
	namespace := fs.String("namespace", sim.DefaultNamespaceURI, "namespace URI of the plant nodes")
	extra := fs.String("extra-namespaces", "", "comma-separated namespace URIs registered before -namespace (moves its index)")
	bulk := fs.Int("bulk", 0, "number of extra Double variables under Plant/Bulk (s=Bulk.00000 …)")
	security := fs.String("security", "None", `comma-separated endpoints: None, <policy>:<Sign|SignAndEncrypt>, or all`)
	certFile := fs.String("cert", "", "server certificate (PEM); generated with -key when absent, in memory when empty")
	keyFile := fs.String("key", "", "server private key (PEM)")
	users := fs.String("users", "", "comma-separated user:password pairs enabling user name login (needs a secure endpoint)")
	update := fs.Duration("update", time.Second, "how often the plant values change (0: never)")
	advertise := fs.String("advertise", "", "comma-separated further host:port addresses clients use to reach the server (proxy, NAT)")
	verbose := fs.Bool("v", false, "log every request the server handles")
	if err := fs.Parse(args); err != nil {
		return err
	}
	host, portStr, err := net.SplitHostPort(*listen)
	if err != nil {
		return fmt.Errorf("-listen %q: %w", *listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 {
		return fmt.Errorf("-listen %q: a port is required", *listen)
	}
	cfg := sim.Config{
		Host:               host,
		Port:               port,
		NamespaceURI:       *namespace,
		ExtraNamespaces:    splitList(*extra),
		BulkNodes:          *bulk,
		Security:           splitList(*security),
		AdvertiseEndpoints: splitList(*advertise),
	}
	if *users != "" {
		cfg.Users = map[string]string{}
		for _, u := range splitList(*users) {
			name, pass, ok := strings.Cut(u, ":")
			if !ok {
				return fmt.Errorf("-users: %q is not user:password", u)
			}
			cfg.Users[name] = pass
		}
	}
	if (*certFile == "") != (*keyFile == "") {
		return fmt.Errorf("-cert and -key go together")
	}
	if *certFile != "" {
		der, key, err := sim.LoadOrGenerate(*certFile, *keyFile, []string{host, "localhost"})
		if err != nil {
			return err
		}
		cfg.CertificateDER, cfg.Key = der, key
	}
	if *verbose {
		cfg.Logger = stdLogger{log.New(out, "", log.LstdFlags)}
	} else {
		log.SetOutput(io.Discard) // the server library logs its start with the standard logger
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := sim.Start(cfg)
	if err != nil {
		return err
	}
	defer srv.Close()
	fmt.Fprintf(out, "opcuasim: serving %s (namespace %s at index %d, security %s)\n", srv.Endpoint(), cfg.NamespaceURI, srv.NamespaceIndex(), strings.Join(cfg.Security, ","))

	if *update > 0 {
		go srv.Simulate(ctx, *update)
	}
	<-ctx.Done()
	fmt.Fprintln(out, "opcuasim: stopping")
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// stdLogger adapts a standard logger to the server's logger interface.
type stdLogger struct{ l *log.Logger }

func (s stdLogger) Debug(msg string, args ...any) { s.l.Printf("DEBUG "+msg, args...) }
func (s stdLogger) Info(msg string, args ...any)  { s.l.Printf("INFO "+msg, args...) }
func (s stdLogger) Warn(msg string, args ...any)  { s.l.Printf("WARN "+msg, args...) }
func (s stdLogger) Error(msg string, args ...any) { s.l.Printf("ERROR "+msg, args...) }
