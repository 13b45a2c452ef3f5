"""Tasks in the domain: what a node offers its tasks (:mod:`.services`), every domain task
type (:mod:`.catalog`, for the node daemon's registry) and the task views of the API
(:mod:`.queries`)."""
