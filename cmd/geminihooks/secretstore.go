package main

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/spf13/cobra"

	"github.com/geminihooks/geminihooks/shared/webhook"
)

// A secretStore keeps the list of signing secrets a Receiver accepts for one
// webhook, newest first, in the form the Receiver reads
// (GEMINI_WEBHOOK_SECRETS_FILE, or a Secret Manager secret mounted as that
// file): the secrets separated by commas.
type secretStore interface {
	// String names the store in messages (never its content).
	String() string
	// Check fails early when the store cannot be written, before a
	// one-time secret is requested from Gemini.
	Check(ctx context.Context) error
	// Read returns the stored secrets; none when the store is empty or absent.
	Read(ctx context.Context) ([]string, error)
	// Write replaces the stored list.
	Write(ctx context.Context, secrets []string) error
}

func encodeSecrets(secrets []string) []byte {
	return []byte(strings.Join(secrets, ",") + "\n")
}

func decodeSecrets(b []byte) []string { return webhook.SplitSecrets(string(b)) }

// fileStore keeps the secrets in a local file with mode 0600, replaced
// atomically so a Receiver reading it never sees half a list.
type fileStore struct{ path string }

func (f fileStore) String() string { return f.path }

func (f fileStore) Check(context.Context) error {
	tmp, err := os.CreateTemp(filepath.Dir(f.path), ".geminihooks-check-*")
	if err != nil {
		return fmt.Errorf("secret file %s: directory not writable: %w", f.path, err)
	}
	tmp.Close()
	os.Remove(tmp.Name())
	return nil
}

func (f fileStore) Read(context.Context) ([]string, error) {
	b, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read secret file %s: %w", f.path, err)
	}
	return decodeSecrets(b), nil
}

func (f fileStore) Write(_ context.Context, secrets []string) error {
	tmp, err := os.CreateTemp(filepath.Dir(f.path), ".geminihooks-secret-*")
	if err != nil {
		return fmt.Errorf("write secret file %s: %w", f.path, err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp already uses 0600; Chmod states the intent and survives
	// platforms where it does not.
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write secret file %s: chmod: %w", f.path, err)
	}
	if _, err := tmp.Write(encodeSecrets(secrets)); err != nil {
		tmp.Close()
		return fmt.Errorf("write secret file %s: %w", f.path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write secret file %s: sync: %w", f.path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write secret file %s: %w", f.path, err)
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		return fmt.Errorf("write secret file %s: rename: %w", f.path, err)
	}
	return nil
}

// smSecretName matches a Secret Manager secret resource name.
var smSecretName = regexp.MustCompile(`^projects/[^/]+/secrets/[A-Za-z0-9_-]+$`)

// smStore keeps the secrets as versions of a Secret Manager secret: every
// change adds a version holding the whole list, so the "latest" alias
// always holds every valid secret. The secret is created (automatic
// replication) if it does not exist.
type smStore struct {
	name string
	c    *secretmanager.Client
}

func (s *smStore) String() string { return s.name }

func (s *smStore) Check(ctx context.Context) error {
	_, err := s.Read(ctx)
	return err
}

func (s *smStore) Read(ctx context.Context) ([]string, error) {
	res, err := s.c.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: s.name + "/versions/latest"})
	if status.Code(err) == codes.NotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("secretmanager access %s/versions/latest: %w", s.name, err)
	}
	data := res.GetPayload().GetData()
	if want := res.GetPayload().DataCrc32C; want != nil && int64(crc32c(data)) != *want {
		return nil, fmt.Errorf("secretmanager access %s/versions/latest: payload checksum mismatch", s.name)
	}
	return decodeSecrets(data), nil
}

func (s *smStore) Write(ctx context.Context, secrets []string) error {
	data := encodeSecrets(secrets)
	sum := int64(crc32c(data))
	add := func() error {
		_, err := s.c.AddSecretVersion(ctx, &secretmanagerpb.AddSecretVersionRequest{
			Parent:  s.name,
			Payload: &secretmanagerpb.SecretPayload{Data: data, DataCrc32C: &sum},
		})
		return err
	}
	err := add()
	if status.Code(err) == codes.NotFound {
		project, id, _ := strings.Cut(strings.TrimPrefix(s.name, "projects/"), "/secrets/")
		_, cerr := s.c.CreateSecret(ctx, &secretmanagerpb.CreateSecretRequest{
			Parent:   "projects/" + project,
			SecretId: id,
			Secret: &secretmanagerpb.Secret{
				Replication: &secretmanagerpb.Replication{Replication: &secretmanagerpb.Replication_Automatic_{Automatic: &secretmanagerpb.Replication_Automatic{}}},
				Labels:      map[string]string{"managed-by": "geminihooks"},
			},
		})
		if cerr != nil && status.Code(cerr) != codes.AlreadyExists {
			return fmt.Errorf("secretmanager create %s: %w", s.name, cerr)
		}
		err = add()
	}
	if err != nil {
		return fmt.Errorf("secretmanager add version to %s: %w", s.name, err)
	}
	return nil
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }

// secretFlags select where a one-time signing secret goes.
type secretFlags struct {
	file, manager, smEndpoint string
	show                      bool
}

func (s *secretFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&s.file, "secret-file", "", "write the signing secret(s) to this file (mode 0600)")
	f.StringVar(&s.manager, "secret-manager", "", "add the signing secret(s) as a new version of this Secret Manager secret (projects/P/secrets/S)")
	f.BoolVar(&s.show, "show-secret", false, "also print the new signing secret")
	f.StringVar(&s.smEndpoint, "secret-manager-endpoint", "", "Secret Manager gRPC endpoint without TLS or auth (tests, emulators)")
	_ = f.MarkHidden("secret-manager-endpoint")
}

// store opens the selected store; nil with --show-secret alone.
func (a *app) secretStore(ctx context.Context, s secretFlags) (secretStore, error) {
	if s.file != "" && s.manager != "" {
		return nil, usageErr("--secret-file and --secret-manager are mutually exclusive")
	}
	if s.file == "" && s.manager == "" && !s.show {
		return nil, usageErr("one of --secret-file, --secret-manager or --show-secret is required: Gemini returns a signing secret only once")
	}
	switch {
	case s.file != "":
		return fileStore{path: s.file}, nil
	case s.manager != "":
		if !smSecretName.MatchString(s.manager) {
			return nil, usageErr("--secret-manager must be projects/PROJECT/secrets/SECRET, not %q", s.manager)
		}
		var opts []option.ClientOption
		if s.smEndpoint != "" {
			opts = append(opts, option.WithEndpoint(s.smEndpoint), option.WithoutAuthentication(),
				option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
		}
		c, err := secretmanager.NewClient(ctx, opts...)
		if err != nil {
			return nil, fail("secretmanager client", err)
		}
		a.closers = append(a.closers, func() { c.Close() })
		return &smStore{name: s.manager, c: c}, nil
	}
	return nil, nil
}
