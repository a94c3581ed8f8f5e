import path from 'node:path';

export const TEST_SERVER_EXECUTABLE = path.resolve(__dirname, '../.tools/bin/temporal-test-server');
