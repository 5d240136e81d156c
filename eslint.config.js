import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'certs/**', 'coverage/**', '.data/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-imports': [
        'error',
        {
          paths: [
            { name: 'dockerode', message: 'Only libs/engine imports dockerode.' },
            { name: 'etcd3', message: 'Only libs/store imports etcd3.' },
            { name: '@kubernetes/client-node', message: 'Only libs/kube imports @kubernetes/client-node.' },
          ],
        },
      ],
    },
  },
  { files: ['libs/engine/**'], rules: { 'no-restricted-imports': 'off' } },
  { files: ['libs/store/**'], rules: { 'no-restricted-imports': 'off' } },
  { files: ['libs/kube/**'], rules: { 'no-restricted-imports': 'off' } },
);
