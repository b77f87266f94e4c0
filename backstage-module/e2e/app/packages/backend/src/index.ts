/*
 * The backend of Backstage's app template (@backstage/create-app 0.9.2), trimmed to the catalog for apiportal's
 * end-to-end test (backstage-module/e2e/backend.sh), which then adds the module as the README says.
 */

import { createBackend } from '@backstage/backend-defaults';

const backend = createBackend();

// catalog plugin
backend.add(import('@backstage/plugin-catalog-backend'));

backend.start();
