// Injection tokens for the controller's providers.
export const STORE = Symbol('STORE');
export const CONTROLLER_CONFIG = Symbol('CONTROLLER_CONFIG');
export const MANAGER_LOOPS = Symbol('MANAGER_LOOPS');
export const OIDC = Symbol('OIDC');
