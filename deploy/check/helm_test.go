package check

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jetflow/jetflow/worker"
	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes/scheme"
)

// chartDir is the Helm chart, from deploy/check.
const chartDir = "../k8s/jetflow"

// missingNATS is the one lint warning allowed: the official NATS chart
// (a dependency) cannot be fetched here, so charts/ does not hold it and
// the chart renders without the NATS manifests.
const missingNATS = "chart directory is missing these dependencies: nats"

// chartValues reads a values file of the chart's testdata (none: the
// chart's defaults).
func chartValues(t *testing.T, file string) chartutil.Values {
	t.Helper()
	if file == "" {
		return chartutil.Values{}
	}
	v, err := chartutil.ReadValuesFile(filepath.Join(chartDir, "testdata", file))
	require.NoError(t, err)
	return v
}

// render renders the chart as `helm template` does, with vals over its
// defaults, and returns the manifests (hooks included).
func render(t *testing.T, vals chartutil.Values) (map[string]string, error) {
	t.Helper()
	ch, err := loader.Load(chartDir)
	require.NoError(t, err)
	install := action.NewInstall(&action.Configuration{Log: t.Logf})
	install.DryRun, install.ClientOnly, install.Replace = true, true, true
	install.ReleaseName, install.Namespace = "prod", "jetflow"
	rel, err := install.Run(ch, vals)
	if err != nil {
		return nil, err
	}
	manifests := releaseutil.SplitManifests(rel.Manifest)
	for _, h := range rel.Hooks {
		manifests[h.Path] = h.Manifest
	}
	return manifests, nil
}

// decodeStrict decodes each manifest as a Kubernetes object of client-go's
// scheme, refusing unknown and duplicate fields.
func decodeStrict(t *testing.T, manifests map[string]string) []runtime.Object {
	t.Helper()
	decoder := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	var objs []runtime.Object
	for _, name := range slices.Sorted(maps.Keys(manifests)) {
		m := manifests[name]
		if strings.TrimSpace(m) == "" {
			continue
		}
		obj, _, err := decoder.Decode([]byte(m), nil, nil)
		require.NoError(t, err, "%s does not decode strictly:\n%s", name, m)
		objs = append(objs, obj)
	}
	return objs
}

// objectsOf returns the objects of type T.
func objectsOf[T runtime.Object](objs []runtime.Object) []T {
	var out []T
	for _, o := range objs {
		if v, ok := o.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// containerEnv is the literal environment of a container (values from
// Secrets are left out: the check does not need them).
func containerEnv(c corev1.Container) map[string]string {
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env[e.Name] = e.Value
		}
	}
	return env
}

// secretRef returns the Secret key a container's variable comes from.
func secretRef(t *testing.T, c corev1.Container, name string) *corev1.SecretKeySelector {
	t.Helper()
	i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == name })
	require.GreaterOrEqual(t, i, 0, "%s has %s", c.Name, name)
	require.NotNil(t, c.Env[i].ValueFrom, "%s: %s comes from a Secret", c.Name, name)
	require.NotNil(t, c.Env[i].ValueFrom.SecretKeyRef, "%s: %s comes from a Secret", c.Name, name)
	return c.Env[i].ValueFrom.SecretKeyRef
}

// requireSecure checks a pod's security contexts: non-root, read-only
// root file system, no capabilities, no privilege escalation.
func requireSecure(t *testing.T, what string, pod corev1.PodSpec) {
	t.Helper()
	require.NotNil(t, pod.SecurityContext, what)
	require.True(t, *pod.SecurityContext.RunAsNonRoot, "%s runs as non-root", what)
	require.Positive(t, *pod.SecurityContext.RunAsUser, what)
	for _, c := range pod.Containers {
		sc := c.SecurityContext
		require.NotNil(t, sc, what)
		require.True(t, *sc.ReadOnlyRootFilesystem, "%s: read-only root file system", what)
		require.False(t, *sc.AllowPrivilegeEscalation, what)
		require.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop, "%s drops every capability", what)
	}
}

// TestHelmChart lints the chart with Helm's own linter and renders it with
// its defaults and with an existing cluster's URL and Secrets
// (testdata/existing-cluster.yaml); every manifest decodes strictly as a
// Kubernetes object, every jetflow command line passes `jetflow --check`,
// and the objects are wired as deploy/k8s/jetflow/README.md says.
func TestHelmChart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		values          string
		natsURL         string
		apiSecret       string
		natsSecret      string // the Secret of the NATS passwords, when used
		hpa, createdKey bool
	}{
		{values: "", natsURL: "nats://prod-nats:4222", apiSecret: "prod-jetflow-api", createdKey: true},
		{values: "existing-cluster.yaml", natsURL: "tls://nats-0.nats:4222,tls://nats-1.nats:4222,tls://nats-2.nats:4222",
			apiSecret: "jetflow-api-key", natsSecret: "jetflow-nats-users", hpa: true},
	} {
		name := tc.values
		if name == "" {
			name = "defaults"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			vals := chartValues(t, tc.values)

			linter := lint.All(chartDir, vals, "jetflow", false)
			for _, m := range linter.Messages {
				if m.Severity >= support.WarningSev {
					require.Equal(t, support.WarningSev, m.Severity, "helm lint: %s", m)
					require.ErrorContains(t, m.Err, missingNATS, "helm lint: %s", m)
				}
			}

			manifests, err := render(t, vals)
			require.NoError(t, err)
			objs := decodeStrict(t, manifests)

			deployments := map[string]*appsv1.Deployment{}
			for _, d := range objectsOf[*appsv1.Deployment](objs) {
				deployments[d.Name] = d
			}
			require.Len(t, deployments, 2)
			jobs := objectsOf[*batchv1.Job](objs)
			require.Len(t, jobs, 1, "the hub's init job")
			pods := map[string]corev1.PodSpec{
				"server": deployments["prod-jetflow-server"].Spec.Template.Spec,
				"worker": deployments["prod-jetflow-worker"].Spec.Template.Spec,
				"init":   jobs[0].Spec.Template.Spec,
			}
			role := map[string]string{"server": "server", "worker": "worker", "init": "admin"}
			for what, pod := range pods {
				requireSecure(t, what, pod)
				require.Len(t, pod.Containers, 1)
				c := pod.Containers[0]
				require.Equal(t, what, c.Args[0])
				env := containerEnv(c)
				require.Equal(t, tc.natsURL, env["JETFLOW_NATS_URL"], what)
				require.NoError(t, checkCommandLine(t, env, c.Args), "%s: %q", what, c.Args)
				require.Contains(t, c.Args, "--inbox-prefix=_INBOX_"+role[what], what)
				if tc.natsSecret != "" {
					require.Contains(t, c.Args, "--user="+role[what], what)
					for _, a := range c.Args {
						require.NotContains(t, a, "--password", "%s: a password on the command line is in every process list", what)
					}
					ref := secretRef(t, c, "JETFLOW_NATS_PASSWORD")
					require.Equal(t, tc.natsSecret, ref.Name, what)
					require.Equal(t, role[what]+"-password", ref.Key, what)
				}
			}

			init := pods["init"].Containers[0]
			require.Contains(t, init.Args, "--replicas=3", "the hub is created with 3 replicas")
			require.Contains(t, init.Args, "--partitions=1", "the hub's partitions are the chart's")

			srv := pods["server"].Containers[0]
			for _, p := range []*corev1.Probe{srv.ReadinessProbe, srv.LivenessProbe} {
				require.NotNil(t, p)
				require.Equal(t, "/healthz", p.HTTPGet.Path)
				require.Equal(t, "http", p.HTTPGet.Port.String())
			}
			apiRef := secretRef(t, srv, "JETFLOW_API_KEY")
			require.Equal(t, tc.apiSecret, apiRef.Name)
			secrets := map[string]*corev1.Secret{}
			for _, s := range objectsOf[*corev1.Secret](objs) {
				secrets[s.Name] = s
			}
			_, created := secrets[tc.apiSecret]
			require.Equal(t, tc.createdKey, created, "the chart makes the API key's Secret only without existingSecret")
			if created {
				require.GreaterOrEqual(t, len(secrets[tc.apiSecret].Data[apiRef.Key]), 16, "a generated key is long enough")
			}

			wpod := pods["worker"]
			require.Greater(t, time.Duration(*wpod.TerminationGracePeriodSeconds)*time.Second, worker.StopTimeout,
				"the kubelet waits for the worker's drain")
			require.Contains(t, wpod.Containers[0].Args, fmt.Sprintf("--metrics=:%d", wpod.Containers[0].Ports[0].ContainerPort))

			hpas := objectsOf[*autoscalingv2.HorizontalPodAutoscaler](objs)
			if !tc.hpa {
				require.Empty(t, hpas)
				return
			}
			require.Len(t, hpas, 1)
			h := hpas[0].Spec
			require.Equal(t, "prod-jetflow-worker", h.ScaleTargetRef.Name)
			require.Nil(t, deployments["prod-jetflow-worker"].Spec.Replicas, "the autoscaler owns the replicas")
			require.Len(t, h.Metrics, 1)
			require.Equal(t, autoscalingv2.ExternalMetricSourceType, h.Metrics[0].Type)
			require.Equal(t, "jetflow_consumer_pending_messages", h.Metrics[0].External.Metric.Name)
			require.Equal(t, map[string]string{"hub": "jetflow"}, h.Metrics[0].External.Metric.Selector.MatchLabels)
		})
	}
}

// TestHelmChartRefuses: values that cannot work fail the render with a
// message naming the value.
func TestHelmChartRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		vals chartutil.Values
		want string
	}{
		{chartutil.Values{"nats": map[string]any{"enabled": false}}, "nats.url is required"},
		{chartutil.Values{"natsAuth": map[string]any{"mode": "token"}}, `natsAuth.mode "token"`},
		{chartutil.Values{"natsAuth": map[string]any{"mode": "password"}}, "natsAuth.passwords.admin"},
	} {
		_, err := render(t, tc.vals)
		require.ErrorContains(t, err, tc.want)
	}
}
