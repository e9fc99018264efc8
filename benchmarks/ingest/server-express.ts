/**
 * A: the baseline a user would otherwise write — bare Express 5 with express.json(),
 * checking the Basic auth write key, parsing the batch and answering like Segment.
 */
import express from 'express'
import { serve } from './child.js'
import { AUTHORIZATION } from './payload.js'

const app = express()
app.disable('x-powered-by')
app.post('/v1/batch', (req, res, next) => {
  if (req.headers.authorization !== AUTHORIZATION) return void res.status(401).json({ code: 'unknown_write_key', message: 'unknown write key' })
  next()
}, express.json({ limit: '1mb' }), (req, res) => {
  const batch = (req.body as { batch?: unknown } | undefined)?.batch
  if (!Array.isArray(batch)) return void res.status(400).json({ code: 'invalid_body', message: 'batch: must be an array' })
  res.status(200).json({ success: true })
})

serve(app)
