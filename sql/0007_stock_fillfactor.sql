-- Every batch updates the stock rows it reserved from. With room left on each page the new
-- row version stays on its page (a HOT update: no new index entry, less WAL).
ALTER TABLE stock SET (fillfactor = 70);
