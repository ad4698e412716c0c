// Package deployshape reads what Terraform deploys, so a test can start each
// function exactly that way (scripts/deploy-shape.sh, TestDeployShape).
//
// The input is the output of `terraform test -json -verbose` on
// terraform/tests/deploy_shape.tftest.hcl: one "test_plan" message per run
// (variable set), whose resource_changes hold the planned
// google_cloudfunctions2_function resources with their entry point,
// environment variables and secret volumes, and the topics.
package deployshape

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
)

// Plan is the deployment Terraform plans for one variable set.
type Plan struct {
	// Run is the tftest run name ("defaults", "everything_on").
	Run string
	// Functions are the planned functions, by key order.
	Functions []Function
	// Topics are the planned Pub/Sub topic names.
	Topics []string
}

// Function is one planned Cloud Function.
type Function struct {
	// Key is the function's key in Terraform's local.functions ("receiver").
	Key string
	// Name is the deployed name (<prefix>-<key>), also its Cloud Run service.
	Name string
	// EntryPoint is the functions.HTTP registration it serves (FUNCTION_TARGET).
	EntryPoint string
	// Env is service_config.environment_variables.
	Env map[string]string
	// Secrets are service_config.secret_volumes.
	Secrets []SecretFile
	// TimeoutSeconds is service_config.timeout_seconds.
	TimeoutSeconds int
}

// SecretFile is one file of a mounted secret volume.
type SecretFile struct {
	// Path is the file's absolute path in the container (mount path + file).
	Path string
	// Secret is the Secret Manager secret id.
	Secret string
	// Version is the mounted version ("latest").
	Version string
}

// Function returns the planned function serving entryPoint.
func (p Plan) Function(entryPoint string) (Function, bool) {
	for _, f := range p.Functions {
		if f.EntryPoint == entryPoint {
			return f, true
		}
	}
	return Function{}, false
}

// FileEnv returns the environment variables that name a mounted secret file,
// file path → variable, and an error for a *_FILE variable whose file is not
// mounted or a mounted file no variable names (the function could not read
// it in production).
func (f Function) FileEnv() (map[string]string, error) {
	byPath := map[string]string{}
	for k, v := range f.Env {
		if !strings.HasSuffix(k, "_FILE") {
			continue
		}
		if !slices.ContainsFunc(f.Secrets, func(s SecretFile) bool { return s.Path == v }) {
			return nil, fmt.Errorf("%s: %s=%s is not a file of any mounted secret volume", f.Name, k, v)
		}
		byPath[v] = k
	}
	for _, s := range f.Secrets {
		if byPath[s.Path] == "" {
			return nil, fmt.Errorf("%s: secret %s is mounted at %s but no *_FILE variable names it", f.Name, s.Secret, s.Path)
		}
	}
	return byPath, nil
}

type message struct {
	Type     string `json:"type"`
	Run      string `json:"@testrun"`
	TestPlan *struct {
		ResourceChanges []struct {
			Type   string          `json:"type"`
			Index  json.RawMessage `json:"index"`
			Change struct {
				After json.RawMessage `json:"after"`
			} `json:"change"`
		} `json:"resource_changes"`
	} `json:"test_plan"`
}

type plannedFunction struct {
	Name        string `json:"name"`
	BuildConfig []struct {
		EntryPoint string `json:"entry_point"`
	} `json:"build_config"`
	ServiceConfig []struct {
		Env           map[string]string `json:"environment_variables"`
		Timeout       int               `json:"timeout_seconds"`
		SecretVolumes []struct {
			MountPath string `json:"mount_path"`
			Secret    string `json:"secret"`
			Versions  []struct {
				Path    string `json:"path"`
				Version string `json:"version"`
			} `json:"versions"`
		} `json:"secret_volumes"`
	} `json:"service_config"`
}

// ReadPlans decodes the JSON lines of `terraform test -json -verbose` and
// returns one Plan per run that planned functions, in run order.
func ReadPlans(r io.Reader) ([]Plan, error) {
	var plans []Plan
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 256<<20) // a plan line holds every provider schema
	for sc.Scan() {
		var m message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return nil, fmt.Errorf("deployshape: terraform test output line is not JSON: %w", err)
		}
		if m.Type != "test_plan" || m.TestPlan == nil {
			continue
		}
		p := Plan{Run: m.Run}
		for _, rc := range m.TestPlan.ResourceChanges {
			switch rc.Type {
			case "google_pubsub_topic":
				var t struct {
					Name string `json:"name"`
				}
				if err := json.Unmarshal(rc.Change.After, &t); err != nil {
					return nil, fmt.Errorf("deployshape: run %s: topic: %w", m.Run, err)
				}
				p.Topics = append(p.Topics, t.Name)
			case "google_cloudfunctions2_function":
				f, err := decodeFunction(rc.Index, rc.Change.After)
				if err != nil {
					return nil, fmt.Errorf("deployshape: run %s: %w", m.Run, err)
				}
				p.Functions = append(p.Functions, f)
			}
		}
		if len(p.Functions) == 0 {
			continue
		}
		slices.SortFunc(p.Functions, func(a, b Function) int { return strings.Compare(a.Key, b.Key) })
		slices.Sort(p.Topics)
		plans = append(plans, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("deployshape: read terraform test output: %w", err)
	}
	return plans, nil
}

func decodeFunction(index, after json.RawMessage) (Function, error) {
	var key string
	if err := json.Unmarshal(index, &key); err != nil {
		return Function{}, fmt.Errorf("function index %s: %w", index, err)
	}
	var pf plannedFunction
	if err := json.Unmarshal(after, &pf); err != nil {
		return Function{}, fmt.Errorf("function %s: %w", key, err)
	}
	if len(pf.BuildConfig) != 1 || len(pf.ServiceConfig) != 1 || pf.BuildConfig[0].EntryPoint == "" {
		return Function{}, fmt.Errorf("function %s: planned without one build_config (entry point) and one service_config", key)
	}
	sc := pf.ServiceConfig[0]
	f := Function{Key: key, Name: pf.Name, EntryPoint: pf.BuildConfig[0].EntryPoint, Env: sc.Env, TimeoutSeconds: sc.Timeout}
	if f.Env == nil {
		f.Env = map[string]string{}
	}
	for _, v := range sc.SecretVolumes {
		for _, ver := range v.Versions {
			f.Secrets = append(f.Secrets, SecretFile{Path: path.Join(v.MountPath, ver.Path), Secret: v.Secret, Version: ver.Version})
		}
	}
	return f, nil
}
