// For the Kubernetes integration tests and bench/kube.ts: an in-process controller in front of a
// real control plane set up as a manager runs it (libs/testing startOrcaKube).
import { loadControllerConfig } from '@orca/config';
import { freePort, startOrcaKube, type OrcaKube, type OrcaKubeOptions } from '@orca/testing';
import { startController, type RunningController } from '../controller.js';

/**
 * Starts the controller with its data in `dir`, the admin password `env.ORCA_ADMIN_PASSWORD`
 * (default orca-admin-pass) and the rest of `env`, then the control plane that calls it.
 */
export async function startControllerWithKube(
  dir: string,
  env: Record<string, string> = {},
  options: Omit<OrcaKubeOptions<RunningController>, 'dir' | 'startController'> = {},
): Promise<OrcaKube<RunningController>> {
  return startOrcaKube({
    ...options,
    dir,
    startController: async (kubeEnv) =>
      startController(
        loadControllerConfig({
          ORCA_ADMIN_PASSWORD: 'orca-admin-pass',
          ...env,
          ...kubeEnv,
          ORCA_DATA_DIR: dir,
          ORCA_PORT: String(await freePort()),
        }),
      ),
  });
}
