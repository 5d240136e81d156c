// The controller's KubeService (undefined when no apiserver is configured).
export const KUBE_SERVICE = Symbol('KUBE_SERVICE');
