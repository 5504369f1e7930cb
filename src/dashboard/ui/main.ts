// The dashboard's page: the entry esbuild bundles into dist/dashboard/app.js (and app.css, from the
// stylesheets imported here).

import 'uplot/dist/uPlot.min.css';
import './style.css';
import { App } from './app.ts';

new App().start();
