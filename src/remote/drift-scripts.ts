import { HOST_FILES } from './host-files.js';
import { pieceReader } from './host-pieces.js';
import { type RenderedScript, type ScriptContext, commonAssignments, render } from './scripts.js';

const DRIFT_BODY = pieceReader(HOST_FILES)('drift.sh');

/** command: status with drift: compare context.release (the current one) with its record (host/drift.sh). Reads only. */
export function renderDriftScript(context: ScriptContext): RenderedScript {
  // The prelude's tf_timed reads the limit, as in every script.
  return render([...commonAssignments(context), { name: 'tf_command_timeout', value: String(context.commandTimeout) }], DRIFT_BODY);
}
