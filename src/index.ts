import { run } from './action/action.js';

void run();
