import type { InfraPlan } from './infra-plan.js'
import { toYaml, type YamlValue } from './yaml.js'

/**
 * Kubernetes manifests (`kubernetes.yaml`): a ConfigMap with the app's
 * `ROUTEMQ_*` settings; the app's pods, whose liveness probe is `/health`
 * and readiness probe `/ready` on the health server's port (secrets come from
 * an optional Secret `<name>-secrets`): with persistent sessions (the
 * default) a StatefulSet, whose pod names are stable client ids
 * (`ROUTEMQ_MQTT_CLIENT_ID`), so that a rescheduled pod resumes its own
 * session, with its headless Service; with clean sessions a Deployment. Then
 * an internal (ClusterIP) Service `<name>-health` on the health port for
 * Prometheus, and a Service for MQTT in front of broker pods labelled
 * `app.kubernetes.io/component: mqtt-broker` with client-IP affinity. No
 * Ingress: the app's only HTTP endpoints are operational and stay inside the
 * cluster.
 */
export function renderKubernetes(plan: InfraPlan): string {
  return renderKubernetesObjects(plan).map((object) => toYaml(object)).join('---\n')
}

/** The same manifests as objects. */
export function renderKubernetesObjects(plan: InfraPlan): YamlValue[] {
  const labels = { 'app.kubernetes.io/name': plan.name, 'app.kubernetes.io/component': 'app' }
  const stateful = plan.persistentSessions
  return [
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `${plan.name}-config`, labels }, data: { ...plan.appEnv } },
    {
      apiVersion: 'apps/v1',
      kind: stateful ? 'StatefulSet' : 'Deployment',
      metadata: { name: plan.name, labels },
      spec: {
        replicas: plan.replicas,
        ...(stateful ? { serviceName: `${plan.name}-instances`, podManagementPolicy: 'Parallel' } : {}),
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            // Longer than the health server's drain delay plus the app's drain timeout (5 s + 10 s by default).
            terminationGracePeriodSeconds: 30,
            containers: [{
              name: 'app',
              image: plan.image,
              envFrom: [{ configMapRef: { name: `${plan.name}-config` } }, { secretRef: { name: `${plan.name}-secrets`, optional: true } }],
              // The pod's name (<name>-0, <name>-1, ...) is its client id: the same after a restart or a reschedule.
              ...(stateful ? { env: [{ name: 'ROUTEMQ_MQTT_CLIENT_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }] } : {}),
              ports: [{ name: 'health', containerPort: plan.healthPort, protocol: 'TCP' }],
              livenessProbe: { httpGet: { path: '/health', port: 'health' }, periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3 },
              readinessProbe: { httpGet: { path: '/ready', port: 'health' }, periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 2 },
            }],
          },
        },
      },
    },
    ...(stateful
      ? [{
          apiVersion: 'v1',
          kind: 'Service',
          metadata: { name: `${plan.name}-instances`, labels },
          spec: { clusterIP: 'None', selector: labels, ports: [{ name: 'health', port: plan.healthPort, targetPort: 'health', protocol: 'TCP' }] },
        }]
      : []),
    {
      apiVersion: 'v1',
      kind: 'Service',
      // /health, /ready and /metrics name internal hosts and carry error text: reachable inside the cluster only.
      metadata: { name: `${plan.name}-health`, labels },
      spec: { type: 'ClusterIP', selector: labels, ports: [{ name: 'health', port: plan.healthPort, targetPort: 'health', protocol: 'TCP' }] },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: `${plan.name}-mqtt`, labels: { 'app.kubernetes.io/name': plan.name, 'app.kubernetes.io/component': 'mqtt-broker' } },
      spec: {
        type: 'ClusterIP',
        selector: { 'app.kubernetes.io/part-of': plan.name, 'app.kubernetes.io/component': 'mqtt-broker' },
        // A device keeps its broker (and its session there) across reconnects.
        sessionAffinity: 'ClientIP',
        sessionAffinityConfig: { clientIP: { timeoutSeconds: 10_800 } },
        ports: [{ name: 'mqtt', port: plan.listen.mqtt, targetPort: 1883, protocol: 'TCP' }],
      },
    },
  ]
}
