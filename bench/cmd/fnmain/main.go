// Command fnmain is the main package the Cloud Functions Go buildpack
// generates (GoogleCloudPlatform/buildpacks, go/functions_framework): it
// blank-imports the root package of the uploaded source, which registers
// every entry point, and lets the Functions Framework serve the one named
// by FUNCTION_TARGET on PORT. bench/cmd/coldstart builds and times it; the
// only deliberate difference from the generated main is the 127.0.0.1 bind.
package main

import (
	"log"
	"net/http"
	"os"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"

	_ "github.com/geminihooks/geminihooks"
)

func main() {
	http.HandleFunc("/robots.txt", http.NotFound)
	http.HandleFunc("/favicon.ico", http.NotFound)
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	if err := funcframework.StartHostPort("127.0.0.1", port); err != nil {
		log.Fatalf("Function failed to start: %v\n", err)
	}
}
