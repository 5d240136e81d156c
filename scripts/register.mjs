// Resolves `@orca/<lib>` to the compiled lib in dist/ at run time (tsc keeps the alias as written).
import { register } from 'node:module';

register('./orca-resolve.mjs', import.meta.url);
