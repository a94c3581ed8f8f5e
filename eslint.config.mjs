// @ts-check
import eslint from '@eslint/js';
import { builtinModules } from 'node:module';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const nodeBuiltins = builtinModules.flatMap((name) => [name, `node:${name}`]);

export default tseslint.config(
  { ignores: ['node_modules/', '.tools/', '.local/', 'coverage/', 'dist/', 'dist.*/', 'bench/results/'] },
  eslint.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
      globals: { ...globals.node },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', ignoreRestSiblings: true }],
    },
  },
  {
    // Prettier keeps code at 120 columns but leaves comments and strings as written: this checks the comments.
    files: ['**/*.ts'],
    rules: {
      'max-len': [
        'error',
        { code: 120, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreRegExpLiterals: true, ignoreUrls: true },
      ],
    },
  },
  {
    // Workflow code runs in Temporal's deterministic sandbox: no Node built-ins there.
    files: ['src/workflows/**/*.ts', 'test/workflows/fixtures/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins.map((name) => ({
            name,
            message: 'Workflow code must be deterministic: no Node built-ins.',
          })),
        },
      ],
    },
  },
  {
    // Activities are the worker's: everything else imports their types only, and shares code through
    // src/stores/, src/aws/ and src/domain/. Tests of activities and the harness's in-process workers build them.
    files: ['**/*.ts'],
    ignores: [
      'src/activities/**',
      'src/worker.ts',
      'test/activities/**',
      'harness/worker.ts',
      'harness/worker-process-main.ts',
    ],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '(^|/)src/activities(/|$)|^(\\.\\.?/)+activities(/|$)',
              allowTypeImports: true,
              message:
                'Only the worker imports values from src/activities/: import type, or move the code to src/stores/ or src/aws/.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  {
    // CommonJS entry points and config files.
    files: ['bin/*.js', '*.config.js'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
