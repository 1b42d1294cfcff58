// SetIndex: keys grouped by a shared value.

import t from 'tap';
import { SetIndex } from '../src/set-index.js';

t.test('keys by group: each once, removed, a group emptied and used again', async (t) => {
  const index = new SetIndex();
  t.same([...index.get('upgrade')], [], 'an unknown group is empty');
  index.add('upgrade', 'shop/cart');
  index.add('upgrade', 'shop/checkout');
  index.add('upgrade', 'shop/cart');
  index.add('other', 'shop/search');
  t.same([...index.get('upgrade')], ['shop/cart', 'shop/checkout'], 'a key once, in the order added');
  index.delete('upgrade', 'shop/cart');
  index.delete('upgrade', 'shop/unknown');
  index.delete('missing', 'shop/cart');
  t.same([...index.get('upgrade')], ['shop/checkout']);
  index.delete('upgrade', 'shop/checkout');
  t.same([...index.get('upgrade')], [], 'emptied');
  index.add('upgrade', 'shop/cart');
  t.same([...index.get('upgrade')], ['shop/cart'], 'a group emptied and used again starts afresh');
  t.same([...index.get('other')], ['shop/search'], 'other groups untouched');
});
